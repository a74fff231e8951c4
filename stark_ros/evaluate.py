"""Benchmark evaluation: ``python -m stark_ros.evaluate --dataset DIR --trackers static,csrt,kcf,stark [options]``.

Runs each tracker once over each sequence from the frame-0 ground truth (one-pass evaluation), writes the results
in the standard toolkits' layouts under ``--output``, scores them with a toolkit's protocol (``--protocol``) and
prints the side-by-side table; writes it as Markdown and CSV with success and precision plots (PNG) beside it.

Examples::

    python -m stark_ros.evaluate --dataset ../shared/eval --trackers static,csrt,kcf,stark --checkpoint ST50.pth
    python -m stark_ros.evaluate --dataset GOT-10k/val --protocol got10k --trackers stark --checkpoint ST50.pth
    python -m stark_ros.evaluate --dataset LaSOT --protocol lasot --trackers stark --shard 1/2   # machine 1 of 2
    python -m stark_ros.evaluate --dataset LaSOT --protocol lasot --results-only host1/results host2/results

Without ``--checkpoint`` a ``stark`` tracker runs the shipped STARK-lite0 model; ``--checkpoint synthetic`` (or
``stark:checkpoint=synthetic``) selects deterministic SYNTHETIC test weights, whose boxes are meaningless (a
warning says so). User errors (bad dataset, missing frame, malformed results, bad checkpoint) print one line
and exit with status 2.
"""
import argparse
import os
import sys

from .allocator import tune_allocator
from .errors import StarkError
from .model.default_model import SYNTHETIC

SYNTHETIC_WARNING = ('WARNING: tracker %s runs deterministic SYNTHETIC STARK weights (checkpoint=synthetic): its boxes '
                     'and scores are NOT meaningful.')


def build_parser():
    from .datasets import READERS
    from .evaluation import PROTOCOLS
    parser = argparse.ArgumentParser(prog='python -m stark_ros.evaluate', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group('dataset')
    data.add_argument('--dataset', required=True, help='dataset folder (GOT-10k: a split folder, e.g. GOT-10k/val)')
    data.add_argument('--format', default='auto', choices=['auto'] + list(READERS),
                      help='dataset layout (default: detected from the files)')
    data.add_argument('--sequences', default=None, help='comma-separated sequence names (default: all)')
    data.add_argument('--lasot-split', default='auto', choices=['auto', 'test', 'all'],
                      help="LaSOT: the 280-sequence test split, all sequences, or 'test' when all are present")
    data.add_argument('--trackingnet-chunks', default=None, help='TrackingNet chunks, e.g. TEST or TRAIN_0,TRAIN_1')
    data.add_argument('--max-frames', type=int, default=None,
                      help='only the first N frames of each sequence (quick checks; scores not comparable)')
    run = parser.add_argument_group('trackers')
    run.add_argument('--trackers', default='static,csrt,kcf,stark',
                     help='comma-separated [label=]kind[:key=value...], kinds static (the frame-0 box on every '
                          'frame: the do-nothing baseline), csrt, kcf, stark; STARK keys: checkpoint, variant, '
                          'device, backend, precision, update_interval, score_threshold, seed '
                          '(default: static,csrt,kcf,stark)')
    run.add_argument('--checkpoint', default=None, help="STARK checkpoint for stark trackers (default: the shipped lite0 model; 'synthetic': test weights)")
    run.add_argument('--variant', default='auto', help='STARK variant, as the node accepts (default: auto)')
    run.add_argument('--device', default='cpu', help='cpu, cuda, cuda:N or auto (default: cpu)')
    run.add_argument('--backend', default='auto',
                     help='auto (default: openvino on an x86 CPU where it is installed, else torch; torch on CUDA; '
                          'the log names the one used), torch, torch-fast, openvino or onnxruntime')
    run.add_argument('--precision', default=None, help='fp32 (default), bf16, fp16 or auto')
    run.add_argument('--update-interval', type=int, default=200, help='STARK dynamic template period, frames')
    run.add_argument('--score-threshold', type=float, default=0.5, help='STARK template update threshold')
    run.add_argument('--output', default='evaluation_results', help='results and report folder')
    run.add_argument('--overwrite', action='store_true', help='rerun sequences whose results exist')
    run.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    run.add_argument('--threads', type=int, default=0,
                     help='CPU threads per worker for STARK (torch) and OpenCV (default 0: the cores divided among '
                          'the workers)')
    run.add_argument('--shard', default=None, help='i/n: run only the i-th of n interleaved parts of the sequences')
    score = parser.add_argument_group('scoring')
    score.add_argument('--protocol', default='pytracking', choices=list(PROTOCOLS),
                       help='toolkit protocol of the metrics (default: pytracking)')
    score.add_argument('--results-only', nargs='+', metavar='DIR', default=None,
                       help='score existing results (results folders or tracker folders, merged) without running')
    score.add_argument('--no-plots', action='store_true', help='do not write the PNG plots')
    score.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def _sequences(args):
    from .datasets import open_dataset
    from .evaluation.runner import shard, truncate
    chunks = args.trackingnet_chunks.split(',') if args.trackingnet_chunks else None
    dataset = open_dataset(args.dataset, args.format, args.lasot_split, chunks)
    names = dataset.sequence_names()
    if args.sequences:
        wanted = [n.strip() for n in args.sequences.split(',') if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise StarkError('unknown sequence(s) %s in %s dataset %s (it has: %s%s)' % (
                ', '.join(unknown), dataset.name, args.dataset, ', '.join(names[:10]), ', ...' if len(names) > 10
                else ''))
        names = wanted
    if args.shard:
        names = shard(names, args.shard)
    return dataset, [truncate(dataset.load_sequence(n), args.max_frames) for n in names]


def run(args, stdout=None, stderr=None):
    """Evaluate as the parsed ``args`` say (table to ``stdout``, progress to ``stderr``: default sys's);
    returns ``{tracker label: Scores}``."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    from .evaluation import score
    from .evaluation.report import write_report
    from .evaluation.results import load_records, search_roots, trackers_in, write_submission
    from .evaluation.runner import run_trackers
    from .evaluation.trackers import parse_tracker_specs

    def log(line):
        print(line, file=stderr, flush=True)

    if args.workers < 1 or args.threads < 0:
        raise ValueError('--workers must be >= 1 and --threads >= 0')
    dataset, sequences = _sequences(args)
    log('dataset: %s (%s layout%s), %d sequence(s)%s' % (
        args.dataset, dataset.name, ', %s split' % dataset.split if hasattr(dataset, 'split') else '',
        len(sequences), ', shard %s' % args.shard if args.shard else ''))
    if args.results_only:
        roots = search_roots(args.results_only)
        labels = trackers_in(args.results_only, [s.name for s in sequences])
        if not labels:
            raise StarkError('no results of these sequences under %s' % ', '.join(args.results_only))
        report_dir = args.output
    else:
        stark = {'checkpoint': args.checkpoint, 'variant': args.variant, 'device': args.device,
                 'backend': args.backend, 'precision': args.precision, 'update_interval': args.update_interval,
                 'score_threshold': args.score_threshold}
        specs = parse_tracker_specs(args.trackers, stark)
        for spec in specs:
            if spec.kind == 'stark' and dict(spec.options).get('checkpoint') == SYNTHETIC:
                log(SYNTHETIC_WARNING % spec.label)
        run_trackers(specs, sequences, args.output, args.overwrite, args.workers, args.threads,
                     got10k_layout=dataset.name == 'got10k', progress=not args.quiet, log=log)
        roots, labels, report_dir = [args.output], [s.label for s in specs], args.output
        server = {'got10k': 'got10k', 'trackingnet': 'trackingnet'}.get(dataset.name)
        if server and not args.shard and args.max_frames is None:
            for label in labels:
                log('submission archive: %s' % write_submission(args.output, label, server,
                                                               [s.name for s in sequences]))
    if all(s.boxes.shape[0] > 1 and (s.boxes[1:] != s.boxes[1:]).all() for s in sequences):
        log('ground truth is given for frame 0 only (a test split): submit the archive to the test server')
        return {}
    results = {label: score(args.protocol, load_records(roots, label, sequences, args.protocol == 'got10k'))
               for label in labels}
    title = '%s, %d sequences' % (os.path.basename(os.path.normpath(args.dataset)), len(sequences))
    text, written = write_report(results, args.protocol, report_dir, title, plots=not args.no_plots)
    print(text, file=stdout)
    for path in written:
        log('wrote %s' % path)
    return results


def main(argv=None):
    """Console entry point (``stark_evaluate``); returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    tune_allocator()
    try:
        run(args)
    except (StarkError, ValueError, KeyError, OSError) as error:
        print('stark_ros.evaluate: error: %s' % (error.args[0] if isinstance(error, KeyError) else error),
              file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
