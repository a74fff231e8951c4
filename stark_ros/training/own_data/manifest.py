"""``manifest.json`` and its readable twin ``MANIFEST.md``: what the own training data was made from."""
import json
import os


def _row(values):
    return '| ' + ' | '.join(str(v) for v in values) + ' |'


def render(manifest):
    """MANIFEST.md text of a manifest dict (as :meth:`Builder.run` returns it)."""
    lines = ['# Own training data: manifest', '',
             'Built by `python -m stark_ros.training.own_data` (seed %d, %.0f s). Method: '
             '`stark_ros/training/own_data/README.md`.' % (manifest['seed'], manifest['build_seconds']), '',
             '## Source files', '',
             _row(['registry', 'package', 'version', 'file', 'kind', 'licence', 'sha256 (first 16)', 'taken']),
             _row(['---'] * 8)]
    for f in manifest['files']:
        taken = ', '.join('%s %s' % (k[2:].replace('_', ' '), v) for k, v in f.items() if k.startswith('n_'))
        if f.get('labels'):
            taken += ', labels: ' + f['labels']
        lines.append(_row([f['registry'], f['package'], f['version'], '`%s`' % f['file'], f['kind'], f['licence'],
                           f['sha256'][:16], taken]))
    lines += ['', '## Output', '']
    for key in ('got10k', 'coco', 'synthetic', 'pseudo_tracks', 'pseudo_label_audit', 'exclusion', 'size'):
        if key in manifest:
            lines.append('- **%s**: %s' % (key, ', '.join('%s %s' % (k, _fmt(v)) for k, v in manifest[key].items())))
    return '\n'.join(lines) + '\n'


def _fmt(value):
    return '%.3f' % value if isinstance(value, float) else str(value)


def write(manifest, folder):
    """Write ``manifest.json`` and ``MANIFEST.md`` into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')
    with open(os.path.join(folder, 'MANIFEST.md'), 'w') as f:
        f.write(render(manifest))
