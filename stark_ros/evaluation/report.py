"""Reports of scored trackers: a table (terminal, Markdown, CSV) and success / precision plots (PNG, matplotlib).

Every report names the protocol it used (:data:`PROTOCOL_NOTES`). Fractions are printed with three decimals
(0.631, as ``../shared/eval/README.md``); the paper prints the same numbers x 100.
"""
import csv
import os

#: the score ROC AUC column of every table (:func:`.metrics.score_roc_auc`): '-' for trackers without scores
SCORE_COLUMN = ('ScoreAUROC', 'ScoreAUROC')
#: per protocol, the table columns: (metric key, header)
COLUMNS = {
    'pytracking': [('AUC', 'AUC'), ('OP50', 'OP50'), ('OP75', 'OP75'), ('P', 'P@20px'), ('NP', 'NP@0.20'),
                   ('FPS', 'FPS'), SCORE_COLUMN],
    'got10k-otb': [('AUC', 'AUC'), ('OP50', 'OP50'), ('OP75', 'OP75'), ('P', 'P@20px'), ('FPS', 'FPS'), SCORE_COLUMN],
    'got10k': [('AO', 'AO'), ('SR50', 'SR0.5'), ('SR75', 'SR0.75'), ('FPS', 'FPS'), SCORE_COLUMN],
    'lasot': [('AUC', 'AUC'), ('P', 'P@20px'), ('NP', 'NP@0.20'), ('OP50', 'OP50'), ('OP75', 'OP75'),
              ('FPS', 'FPS'), SCORE_COLUMN],
    'trackingnet': [('AUC', 'AUC (area)'), ('P', 'P (area)'), ('NP', 'NP (area)'), ('FPS', 'FPS'), SCORE_COLUMN],
}

PROTOCOL_NOTES = {
    'pytracking': 'pytracking protocol (visionml/pytracking analysis): one-pass evaluation from the frame-0 ground '
                  'truth; AUC = mean success rate over IoU thresholds 0:0.05:1 (IoU > t); P@20px and NP@0.20 '
                  '(centre error <= t); averaged over sequences; FPS = frames / tracker seconds',
    'got10k-otb': 'got10k toolkit OTB experiment (PyPI got10k 0.1.3 ExperimentOTB): success score = mean over '
                  '21 IoU thresholds (>), precision at 20 px, averaged over sequences; FPS = mean of 1/t',
    'got10k': 'got10k toolkit GOT-10k experiment (ExperimentGOT10k, val): frame 0 dropped, boxes clipped to the '
              'image, frames with cover 0 dropped, IoUs of all sequences pooled; AO, SR0.5, SR0.75; FPS = mean 1/t',
    'lasot': 'LaSOT toolkit protocol: one-pass evaluation, fully occluded / out-of-view frames are failures; AUC '
             '(mean success curve), P@20px, NP@0.20, averaged over sequences',
    'trackingnet': 'TrackingNet devkit protocol: boxes rounded, IoU >= t, success / precision / normalized '
                   'precision as areas under 21-point curves',
}

#: curve name -> (x label, legend metric key, legend label)
CURVE_AXES = {'success': ('Overlap threshold (IoU)', 'Success rate'),
              'precision': ('Location error threshold (pixels)', 'Precision'),
              'norm_precision': ('Normalized location error threshold', 'Normalized precision')}
LEGEND_SCORE = {'success': ('AUC', 'AO'), 'precision': ('P',), 'norm_precision': ('NP',)}


#: every report's note on the score column
SCORE_NOTE = ('ScoreAUROC = area under the ROC curve of the per-frame confidence score for "IoU > 0.5" over the '
              'frames after frame 0 of all sequences (Mann-Whitney U / (n_pos n_neg), ties 1/2; nan when one class '
              'is empty; - for trackers without scores)')


def _format(key, value):
    if value is None:
        return '-' if key == SCORE_COLUMN[0] else 'n/a'
    return '%.1f' % value if key == 'FPS' else '%.3f' % value


def table(results, protocol):
    """``(headers, rows)`` of the overall scores: one row per tracker (``results``: label -> Scores)."""
    columns = COLUMNS[protocol]
    headers = ['tracker'] + [header for _, header in columns]
    rows = [[label] + [_format(key, scores.overall.get(key)) for key, _ in columns]
            for label, scores in results.items()]
    return headers, rows


def sequence_table(results, protocol):
    """``(headers, rows)``: one row per tracker and sequence."""
    columns = COLUMNS[protocol]
    headers = ['tracker', 'sequence'] + [header for _, header in columns]
    rows = [[label, name] + [_format(key, values.get(key)) for key, _ in columns]
            for label, scores in results.items() for name, values in scores.per_sequence.items()]
    return headers, rows


def format_text(headers, rows):
    """An aligned plain-text table for the terminal."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    line = lambda cells: '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return '\n'.join([line(headers), line(['-' * w for w in widths])] + [line(r) for r in rows])


def format_markdown(headers, rows):
    """A GitHub Markdown table."""
    out = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join('---' for _ in headers) + '|']
    return '\n'.join(out + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows])


def write_csv(path, headers, rows):
    """Write a table as CSV; returns ``path``."""
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def plot_curves(results, curve, path, title=''):
    """One PNG plot of a curve (``'success'``, ``'precision'`` or ``'norm_precision'``) with one line per tracker,
    the score in the legend and trackers sorted by it (like the STARK paper's Fig. 5). Returns ``path``, or None
    when no tracker has that curve.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lines = []
    for label, scores in results.items():
        if curve not in scores.curves:
            continue
        key = next((k for k in LEGEND_SCORE[curve] if k in scores.overall), None)
        value = scores.overall.get(key)
        lines.append((value if value is not None else -1, label, scores.curves[curve], key))
    if not lines:
        return None
    figure = Figure(figsize=(5.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for value, label, (x, y), key in sorted(lines, key=lambda item: -item[0]):
        axes.plot(x, y, linewidth=2, label='%s [%s %.3f]' % (label, key, value) if key else label)
    xlabel, ylabel = CURVE_AXES[curve]
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 1.0)
    axes.set_xlim(float(lines[0][2][0][0]), float(lines[0][2][0][-1]))
    axes.grid(True, linestyle=':')
    axes.set_title(title or ('%s plot' % ylabel), fontsize=10)
    axes.legend(loc='lower left' if curve == 'success' else 'lower right', fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path


def write_report(results, protocol, folder, title='', plots=True):
    """Write ``folder/report_<protocol>.md`` / ``.csv``, ``sequences_<protocol>.csv`` and the plots.

    Returns:
        ``(terminal text, [written paths])``.
    """
    os.makedirs(folder, exist_ok=True)
    headers, rows = table(results, protocol)
    note = 'Protocol: %s.\n%s.' % (PROTOCOL_NOTES[protocol], SCORE_NOTE)
    written = [write_csv(os.path.join(folder, 'report_%s.csv' % protocol), headers, rows),
               write_csv(os.path.join(folder, 'sequences_%s.csv' % protocol), *sequence_table(results, protocol))]
    markdown = os.path.join(folder, 'report_%s.md' % protocol)
    with open(markdown, 'w') as handle:
        handle.write('%s%s\n\n%s\n' % ('%s\n\n' % title if title else '', format_markdown(headers, rows), note))
    written.append(markdown)
    for curve in ('success', 'precision') if plots else ():
        path = plot_curves(results, curve, os.path.join(folder, '%s_%s.png' % (curve, protocol)),
                           '%s (%s protocol)' % (title or 'One-pass evaluation', protocol))
        if path:
            written.append(path)
    return '%s\n%s' % (format_text(headers, rows), note), written
