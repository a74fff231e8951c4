"""Training progress for people and for plots: a tqdm bar (loss, learning rate, samples per second) and a CSV log
with every loss term. Only the main process (rank 0) creates them."""
import csv
import os
import sys
import time

from tqdm import tqdm

#: Columns written before the loss terms.
CSV_LEAD = ('phase', 'epoch', 'iteration', 'step', 'samples', 'lr', 'backbone_lr')
#: Columns written after them.
CSV_TAIL = ('samples_per_s', 'elapsed_s')


class CsvLog:
    """Appends rows to ``path`` (creating it with a header); a resumed run appends to the same file.

    Args:
        path: CSV file.
        terms: names of the loss terms (columns between :data:`CSV_LEAD` and :data:`CSV_TAIL`).
    """

    def __init__(self, path, terms):
        self.path = path
        self.columns = list(CSV_LEAD) + list(terms) + list(CSV_TAIL)
        fresh = not os.path.isfile(path) or os.path.getsize(path) == 0
        if not fresh:
            with open(path, newline='') as stream:
                header = next(csv.reader(stream), [])
            if header != self.columns:
                raise ValueError('%s has columns %s, this run writes %s: use another output directory'
                                 % (path, header, self.columns))
        self._stream = open(path, 'a', newline='')
        self._writer = csv.DictWriter(self._stream, self.columns)
        if fresh:
            self._writer.writeheader()
            self._stream.flush()

    def write(self, row):
        """Write one row (a dict over :attr:`columns`; floats with 6 significant digits) and flush."""
        self._writer.writerow({k: ('%.6g' % v if isinstance(v, float) else v) for k, v in row.items()})
        self._stream.flush()

    def close(self):
        self._stream.close()


class ProgressBar:
    """A tqdm bar over one epoch's iterations with the running loss, learning rate and global samples/s.

    ``enabled=False`` makes every method a no-op (processes other than rank 0).
    """

    def __init__(self, total, description, enabled=True):
        self._bar = tqdm(total=total, desc=description, file=sys.stderr, dynamic_ncols=True,
                         disable=not enabled, leave=True)
        self._start = time.perf_counter()

    def update(self, loss, lr, samples):
        """One iteration done; ``samples`` = samples processed by all processes since the epoch started."""
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.set_postfix(loss='%.4f' % loss, lr='%.2e' % lr, samples_s='%.1f' % (samples / elapsed),
                              refresh=False)
        self._bar.update(1)

    def close(self):
        self._bar.close()


class Meter:
    """Running sums of loss terms (floats) for averages over a window."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, terms):
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def means(self):
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}
