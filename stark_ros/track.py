"""Offline tracking: ``python -m stark_ros.track --input VIDEO_OR_FOLDER --init-box x,y,w,h [options]``.

Runs :class:`stark_ros.tracker.StarkTracker` over a video file or a folder of images (sorted by name) and writes
one ``x,y,w,h`` line per frame (pixels, top-left + size; frame 0 = the init box), the usual benchmark results
format, and names the engine it runs on stderr (``--backend auto``, the default, picks the fastest exact one
installed: :func:`stark_ros.backends.resolve_backend`). With ``--scores FILE`` it writes one confidence per frame:
frame 0 gets 1 (the given box), and a network without a score head (S50, Lightning, MMTracking stage 1) writes
``nan`` for every tracked frame.

Without ``--checkpoint`` the tracker runs the shipped STARK-lite0 model (:data:`stark_ros.model.DEFAULT_CHECKPOINT`);
``--checkpoint synthetic`` selects deterministic synthetic test weights, whose boxes are meaningless (a warning says
so). User errors (missing input, malformed box, box outside the image, bad checkpoint) print one
line to stderr and exit with status 2.
"""
import argparse
import contextlib
import itertools
import sys

from .allocator import tune_allocator
from .errors import StarkError
from .io import open_frames, parse_box
from .model.default_model import SYNTHETIC

SYNTHETIC_WARNING = ('WARNING: --checkpoint synthetic: using deterministic SYNTHETIC weights (seed 0). '
                     'The boxes are NOT meaningful; pass a STARK checkpoint for real tracking.')


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m stark_ros.track', description=__doc__.split('\n')[0])
    parser.add_argument('--input', required=True, help='video file or folder of images (sorted by name)')
    parser.add_argument('--init-box', required=True, help='target box on frame 0: x,y,w,h in pixels')
    parser.add_argument('--checkpoint', default=None, help="official, MMTracking or stark_ros.train checkpoint (default: the shipped lite0 model; "
                        "'synthetic': test weights)")
    parser.add_argument('--variant', default='auto', help='auto, s50, st50, st101, lightning or lite0 (default: auto)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:N or auto (default: cpu)')
    parser.add_argument('--backend', default='auto',
                        help='auto (default: the fastest exact fp32 engine installed: openvino on an x86 CPU where it '
                             'is installed, else torch; torch on CUDA), torch (reference), torch-fast, openvino or '
                             'onnxruntime')
    parser.add_argument('--precision', default=None,
                        help='fp32 (default), bf16, fp16 (torch-fast on CUDA) or auto; see stark_ros.backends')
    parser.add_argument('--update-interval', type=int, default=200, help='dynamic template period, frames')
    parser.add_argument('--score-threshold', type=float, default=0.5, help='dynamic template update threshold')
    parser.add_argument('--output', default=None, help='results file, one x,y,w,h line per frame (default: stdout)')
    parser.add_argument('--scores', default=None, help='also write one confidence per frame to this file')
    parser.add_argument('--max-frames', type=int, default=None, help='stop after this many frames')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def run(args, stdout=sys.stdout, stderr=sys.stderr):
    """Track as the parsed ``args`` say; returns the list of xywh boxes (frame 0 first)."""
    from tqdm import tqdm

    from .tracker import StarkTracker, TrackerParams
    box = parse_box(args.init_box)
    source = open_frames(args.input)
    params = TrackerParams(update_interval=args.update_interval, score_threshold=args.score_threshold)
    if args.checkpoint == SYNTHETIC:
        print(SYNTHETIC_WARNING, file=stderr)
    tracker = StarkTracker.from_checkpoint(args.checkpoint, args.variant, args.device, params,
                                           backend=args.backend, precision=args.precision)
    info = tracker.info
    print('STARK %s on %s: backend %s%s, %s' % (
        info.get('variant'), info.get('device', args.device), info.get('backend'),
        ' (auto)' if info.get('requested_backend') == 'auto' else '', info.get('precision')), file=stderr)
    frames = iter(source) if args.max_frames is None else itertools.islice(source, args.max_frames)
    first = next(frames, None)
    if first is None:
        raise ValueError('no frame could be read from %s' % args.input)
    tracker.initialize(first, box)          # a bad box is rejected before any output file is created
    total = source.count if args.max_frames is None else min(args.max_frames, source.count or args.max_frames)
    boxes = [tuple(box)]
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(args.output, 'w')) if args.output else stdout
        score_out = stack.enter_context(open(args.scores, 'w')) if args.scores else None
        progress = stack.enter_context(tqdm(total=total, unit='frame', file=stderr, disable=args.quiet))

        def write(result_box, score):
            out.write('%s\n' % ','.join(repr(float(v)) for v in result_box))
            if score_out is not None:
                score_out.write('%s\n' % ('nan' if score is None else repr(float(score))))
            progress.update(1)

        write(boxes[0], 1.0)
        for frame in frames:
            result = tracker.track(frame)
            boxes.append(result.box)
            write(result.box, result.score)
    return boxes


def main(argv=None):
    """Console entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()
    try:
        run(args)
    except (StarkError, ValueError, OSError) as error:     # OSError: unreadable input, unwritable output
        print('stark_ros.track: error: %s' % error, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
