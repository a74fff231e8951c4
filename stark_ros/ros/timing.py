"""Latency statistics of the tracked frames: the rolling window behind ``TrackerNode.timing()``, the one-line
format the node logs (:func:`format_timing`), which the demo and the benchmarks read back (:func:`parse_timing`),
and the frame rates of the diagnostics (:class:`RateWindow`)."""
import collections
import re

import numpy as np   # at import, not lazily: the shutdown summary must not import anything

#: Columns of a timing row, milliseconds: image stamp -> image callback, callback -> worker, convert + track +
#: publish, ``track()`` alone.
COLUMNS = ('delivery', 'wait', 'work', 'track')

_FORMAT = ('p50 / p95: delivery {delivery[0]:.1f} / {delivery[1]:.1f} ms, '
           'wait for the tracker {wait[0]:.1f} / {wait[1]:.1f} ms, work (convert + track + publish) '
           '{work[0]:.1f} / {work[1]:.1f} ms, of which track() {track[0]:.1f} / {track[1]:.1f} ms')
_PATTERN = re.compile(r'last (\d+) tracked frames, p50 / p95: delivery ([\d.]+) / ([\d.]+) ms, wait for the tracker '
                      r'([\d.]+) / ([\d.]+) ms, work \(convert \+ track \+ publish\) ([\d.]+) / ([\d.]+) ms, of which '
                      r'track\(\) ([\d.]+) / ([\d.]+) ms')


class LatencyWindow:
    """The last ``size`` timing rows (one per tracked frame). Not thread-safe: the node guards it with its lock."""

    def __init__(self, size=300):
        self._rows = collections.deque(maxlen=size)

    def append(self, delivery_ms, wait_ms, work_ms, track_ms):
        self._rows.append((delivery_ms, wait_ms, work_ms, track_ms))

    def summary(self, last=None):
        """``{'frames': n, 'delivery': (p50, p95), 'wait': ..., 'work': ..., 'track': ...}`` in ms over the last
        ``last`` rows (default all kept); {} when there is none."""
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        if last is not None:
            rows = rows[len(rows) - min(len(rows), last):]
        if not len(rows):
            return {}
        out = {'frames': len(rows)}
        for column, name in enumerate(COLUMNS):
            out[name] = (float(np.percentile(rows[:, column], 50)), float(np.percentile(rows[:, column], 95)))
        return out


    def latency_percentile(self, q=95.0, last=None):
        """Percentile ``q`` of the end-to-end latency (delivery + wait + work: image stamp -> detection published),
        ms, over the last ``last`` rows (default all kept); None when there is none."""
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        if last is not None:
            rows = rows[len(rows) - min(len(rows), last):]
        if not len(rows):
            return None
        return float(np.percentile(rows[:, 0] + rows[:, 1] + rows[:, 2], q))


class RateWindow:
    """Event rates over a sliding time window, from snapshots of monotonically growing counters.

    ``add(now, counts)`` records ``{name: count}`` at monotonic time ``now`` (seconds); :meth:`rates` and
    :meth:`deltas` compare the newest snapshot with the oldest one not older than ``seconds``. Not thread-safe.
    """

    def __init__(self, seconds=5.0):
        self.seconds = float(seconds)
        self._snapshots = collections.deque()

    def add(self, now, counts):
        self._snapshots.append((float(now), dict(counts)))
        while len(self._snapshots) > 2 and now - self._snapshots[1][0] >= self.seconds:
            self._snapshots.popleft()

    def span(self):
        """Seconds between the oldest and the newest snapshot kept (0 with fewer than two)."""
        return self._snapshots[-1][0] - self._snapshots[0][0] if len(self._snapshots) > 1 else 0.0

    def deltas(self):
        """``{name: increase}`` over :meth:`span` (zeros with fewer than two snapshots)."""
        if not self._snapshots:
            return {}
        first, last = self._snapshots[0][1], self._snapshots[-1][1]
        return {name: last[name] - first.get(name, 0) for name in last}

    def rates(self):
        """``{name: increase per second}`` over :meth:`span`; zeros while the span is 0."""
        span = self.span()
        return {name: (delta / span if span > 0 else 0.0) for name, delta in self.deltas().items()}


def format_timing(timing, with_frames=True):
    """One line for a :meth:`LatencyWindow.summary` dict (what the node logs; :func:`parse_timing` reads it back)."""
    line = _FORMAT.format(**timing)
    return 'last %d tracked frames, %s' % (timing['frames'], line) if with_frames else line


def format_summary(period, counts, tracking, timing):
    """The node's INFO line on its frame counters over ``period`` (text such as ``'last 30 s'``): ``counts`` as
    ``TrackerNode.stats()``, ``tracking`` whether a target is set, ``timing`` a :meth:`LatencyWindow.summary` dict
    (appended with :func:`format_timing` when not empty)."""
    return ('%s: %d images received, %d tracked, %d dropped (tracker busy), %d lost before delivery, '
            '%d malformed, %d tracker errors%s%s'
            % ((period,) + tuple(counts[k] for k in ('received', 'processed', 'dropped', 'lost', 'rejected', 'errors'))
               + ('' if tracking else '; no target set', '; %s' % format_timing(timing) if timing else '')))


def parse_timing(text):
    """The last :func:`format_timing` line in ``text`` (e.g. a node's log) as a timing dict; {} if there is none."""
    found = _PATTERN.findall(text or '')
    if not found:
        return {}
    values = [float(v) for v in found[-1]]
    return {'frames': int(values[0]), 'delivery': tuple(values[1:3]), 'wait': tuple(values[3:5]),
            'work': tuple(values[5:7]), 'track': tuple(values[7:9])}
