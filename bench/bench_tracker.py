#!/usr/bin/env python3
"""Benchmark StarkTracker.track() per variant and inference backend; prints ONE table plus PASS/FAIL targets.

Usage (from the repository root)::

    python bench/bench_tracker.py                                   # all variants, all available backends
    python bench/bench_tracker.py --variants st50,lightning --backends torch,torch-fast:bf16,openvino:bf16
    python bench/bench_tracker.py --frames 30 --warmup 5 --threads 2 --json results.json

Backends are ``name[:precision][+compile]``: torch, torch-fast:fp32, torch-fast:bf16, openvino:fp32,
openvino:bf16, onnxruntime, and e.g. torch-fast:bf16+compile (``torch.compile`` with inductor freezing) or
torch-fast:fp32+noonednn (the stock PyTorch kernels instead of the oneDNN ones, ``stark_ros/backends/onednn.py``).
Weights are the deterministic synthetic ones (seed 0; the speed does not depend on the values).

What is measured, per variant (all backends of a variant live in one process):

* ``median`` / ``p95`` ms of ``tracker.track(frame)`` on 640x480 RGB frames (crop + pre-processing + search
  backbone + transformer + heads + post-processing), after ``--warmup`` frames, over ``--frames`` frames. The
  sequence is a synthetic textured scene with a moving 80x60 object; before each call the tracker's state is set
  to the object's previous box (teacher forcing, not timed), so every backend crops the same, realistic
  regions (search crops of ~350 px) although the synthetic weights cannot track. The backends are interleaved
  frame by frame (the order rotates every frame), so load from other processes hits them alike.
* ``FPS`` = 1000 / median; ``ratio`` = median / median of eager ``torch`` fp32 of the same variant (same process,
  interleaved).
* ``peak MB``: in a fresh child process that has loaded the network: peak resident memory (Linux VmHWM, reset
  after loading via /proc/self/clear_refs) minus the resident memory at that point, over building the engine and
  tracking 3 frames. It is the extra memory the backend costs on top of the loaded torch network (weight copies,
  compiled graphs, activations, runtime libraries). ``--no-memory`` skips it.
* ``start s``: start-up: building the engine (copy/fold, ONNX export + OpenVINO/ORT compilation) plus the first
  ``initialize()`` and ``track()`` (where ``torch.compile`` compiles, once per input shape).
* ``dev px``: the largest |box difference| in pixels from the eager fp32 tracker on the variant's oracle
  teacher-forced sequence (test/fixtures; 39 frames ST50/Lightning, 19 frames S50/ST101). lite0, the project's
  own variant, has no official oracle: it runs the ST50 oracle's frames and teacher-forced states.

With ``--node-seconds S`` the script then runs the ROS node behind a 30 Hz 640x480 bgr8 camera over DDS for S
seconds per variant (``bench_node.py`` in a child process, once per ``--node-backends`` spec, default eager
``torch``) and prints a second table: frames played / processed / dropped / lost, the node's end-to-end latency
(image stamp -> detection received) median and p95, the tracker's own p95 in the same run, their difference
against the issue's +15 ms bound, the node's own overhead and the latency growth (see ``bench_node.py``).
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

from stark_ros.allocator import tune_allocator  # noqa: E402
from stark_ros.backends import available_backends, build_engine, cpu_supports_bf16  # noqa: E402
from stark_ros.cpu import available_cores  # noqa: E402
from stark_ros.model import load_network  # noqa: E402
from stark_ros.tracker import StarkTracker, TrackerParams  # noqa: E402

VARIANTS = ('s50', 'st50', 'st101', 'lightning', 'lite0')
REFERENCE = os.path.join(REPO_ROOT, 'test', 'fixtures')
ORACLES = {'st50': 'oracle_st50_seed0.npz', 's50': 'oracle_s50_seed0.npz', 'st101': 'oracle_st101_seed0.npz',
           'lightning': 'oracle_lightning_seed0.npz',
           'lite0': 'oracle_st50_seed0.npz'}   # no official lite0 oracle: the ST50 sequence, frames and states


def default_backends():
    specs = ['torch', 'torch-fast:fp32']
    bf16 = cpu_supports_bf16()
    if bf16:
        specs.append('torch-fast:bf16')
    available = available_backends()
    if 'openvino' in available:
        specs.append('openvino:fp32')
        if bf16:
            specs.append('openvino:bf16')
    if 'onnxruntime' in available:
        specs.append('onnxruntime')
    return specs


#: ``+flag`` suffixes of a backend spec and the engine options they set.
SPEC_FLAGS = {'compile': ('compile', True), 'noonednn': ('onednn', False)}


def parse_spec(spec):
    """'torch-fast:bf16+compile' -> ('torch-fast', 'bf16', {'compile': True}); '+noonednn' -> onednn=False.

    Raises:
        ValueError: an unknown ``+flag``.
    """
    spec, *flags = spec.split('+')
    options = {}
    for flag in flags:
        if flag not in SPEC_FLAGS:
            raise ValueError('unknown backend flag +%s (known: %s)' % (flag, ', '.join(sorted(SPEC_FLAGS))))
        key, value = SPEC_FLAGS[flag]
        options[key] = value
    name, _, precision = spec.partition(':')
    return name, (precision or 'fp32'), options


def make_engine(network, spec, threads):
    name, precision, options = parse_spec(spec)
    if name in ('openvino', 'onnxruntime'):
        options['threads'] = threads
    return build_engine(network, name, precision=precision, **options)


# ------------------------------------------------------------------------------------------- frames


def synthetic_sequence(count, width=640, height=480, seed=0):
    """(frames RGB uint8, boxes xywh): a smooth random background with an 80x60 textured object moving on it."""
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    background = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    background = np.clip(background.astype(np.int16) + rng.integers(-12, 13, size=background.shape), 0, 255)
    background = background.astype(np.uint8)
    obj = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    obj[20:40, 25:55] = (230, 40, 40)
    frames, boxes = [], []
    for t in range(count):
        x = 120 + 360 * (0.5 + 0.5 * np.sin(t / 17.0))
        y = 100 + 240 * (0.5 + 0.5 * np.cos(t / 23.0))
        xi, yi = int(round(x)), int(round(y))
        frame = background.copy()
        frame[yi:yi + 60, xi:xi + 80] = obj
        frames.append(frame)
        boxes.append((float(xi), float(yi), 80.0, 60.0))
    return frames, boxes


# ------------------------------------------------------------------------------------------- measures


def time_interleaved(trackers, frames, boxes, warmup, count, gap_ms=5.0):
    """{spec: [ms per track()]} over ``count`` frames after ``warmup``, order rotating every frame.

    ``gap_ms`` of sleep before each timed call lets the previous runtime's worker threads stop spinning (OpenMP,
    TBB and ORT pools busy-wait briefly after a run), so one backend's idle threads do not slow the next one.
    """
    specs = list(trackers)
    for tracker in trackers.values():
        tracker.initialize(frames[0], boxes[0])
    times = {spec: [] for spec in specs}
    for i in range(1, warmup + count + 1):
        frame = frames[i % len(frames) or 1]
        state = boxes[(i - 1) % len(frames)]
        shift = i % len(specs)
        for spec in specs[shift:] + specs[:shift]:
            tracker = trackers[spec]
            tracker.state = state
            time.sleep(gap_ms / 1000.0)
            start = time.perf_counter()
            tracker.track(frame)
            elapsed = (time.perf_counter() - start) * 1000.0
            if i > warmup:
                times[spec].append(elapsed)
    return times


def oracle_forced_boxes(engine, variant):
    """Boxes of the teacher-forced run on the oracle sequence, or None without the oracle file."""
    path = os.path.join(REFERENCE, ORACLES[variant])
    if not os.path.isfile(path):
        return None
    with np.load(path) as data:
        state_in, init_box = data['forced_state_in'], data['init_box']
        meta = json.loads(str(data['meta_json']))
        frames_bgr = data['frames_bgr'] if 'frames_bgr' in data.files else None
    if frames_bgr is None:   # Lightning's oracle refers to the ST50 frames
        with np.load(os.path.join(REFERENCE, ORACLES['st50'])) as data:
            frames_bgr = data['frames_bgr']
    kwargs = {}
    if meta.get('update_intervals'):
        kwargs = dict(update_interval=meta['update_intervals'][0], score_threshold=meta['update_threshold_used'])
    params = TrackerParams(**kwargs)
    frames = np.ascontiguousarray(frames_bgr[..., ::-1])
    tracker = StarkTracker(engine, params)
    tracker.initialize(frames[0], init_box)
    out = []
    for t in range(1, len(frames)):
        tracker.state = state_in[t]
        out.append(tracker.track(frames[t]).box)
    return np.array(out)


def read_status(field):
    with open('/proc/self/status', encoding='ascii') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def memory_child(args):
    """Child process: load the network, reset the peak, build the engine, track 3 frames; print MB as JSON."""
    torch.set_num_threads(args.threads)
    network, _ = load_network(args.memory_checkpoint, args.memory_child[0], 'cpu')
    frames, boxes = synthetic_sequence(4)
    gc.collect()
    try:
        with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
            f.write('5')
        base = read_status('VmRSS')
    except OSError:
        base = read_status('VmHWM')
    engine = make_engine(network, args.memory_child[1], args.threads)
    tracker = StarkTracker(engine, TrackerParams())
    tracker.initialize(frames[0], boxes[0])
    for t in range(1, 4):
        tracker.state = boxes[t - 1]
        tracker.track(frames[t])
    print(json.dumps({'peak_mb': read_status('VmHWM') - base}))


def measure_memory(variant, spec, checkpoint, threads):
    cmd = [sys.executable, os.path.abspath(__file__), '--memory-child', variant, spec, '--memory-checkpoint',
           checkpoint, '--threads', str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)['peak_mb']
    sys.stderr.write('memory measurement failed for %s %s:\n%s\n' % (variant, spec, proc.stderr[-2000:]))
    return float('nan')


def node_latency(variant, spec, seconds, rate=30.0):
    """The ROS node's end-to-end latency for ``variant`` on backend ``spec``: ``bench_node.py``'s result dict.

    Runs ``bench_node.py`` in a child process (it starts the node in a process of its own), so this process
    never imports rclpy. Raises RuntimeError if the child fails or sees no detection.
    """
    name, precision, options = parse_spec(spec)
    if options:
        raise ValueError('the node benchmark takes name[:precision] backends, got %r' % spec)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'node.json')
        command = [sys.executable, os.path.join(REPO_ROOT, 'bench', 'bench_node.py'), '--variant', variant,
                   '--backend', name, '--precision', precision, '--seconds', str(seconds), '--rate', str(rate),
                   '--json', out]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not os.path.isfile(out):
            raise RuntimeError('bench_node.py failed for %s %s (exit %d): %s'
                               % (variant, spec, done.returncode, done.stdout[-500:] + done.stderr[-1500:]))
        with open(out, encoding='utf-8') as f:
            return json.load(f)


def print_node_table(results):
    """The node latency table (one row per :func:`node_latency` result) and its targets as PASS/FAIL lines."""
    print('%-9s %-16s %15s %8s %8s %9s %8s %8s %9s' % (
        'variant', 'node backend', 'played/proc/drop', 'p50 ms', 'p95 ms', 'track p95', 'excess', 'own ms',
        'growth'))
    print('-' * 98)
    for r in results:
        own = r['own_overhead_ms']
        print('%-9s %-16s %15s %8.1f %8.1f %9.1f %+8.1f %8s %9s' % (
            r['variant'], '%s:%s' % (r['backend'], r['precision']),
            '%d/%d/%d' % (r['played'], r['processed'], r['dropped']), r['latency_ms']['median'],
            r['latency_ms']['p95'], r['tracker_p95_ms'], r['excess_ms'], 'n/a' if own is None else '%+.1f' % own,
            '%.0f->%.0f' % (r['growth_ms']['first_third_p95'], r['growth_ms']['last_third_p95'])))
    print()
    for r in results:
        ok = r['excess_ms'] <= 15.0 and r['no_growth']
        print('%s  %s node on %s:%s: p95 <= tracker p95 + 15 ms and no growth over %.0f s: %+.1f ms, '
              'p95 %.0f -> %.0f ms' % ('PASS' if ok else 'FAIL', r['variant'], r['backend'], r['precision'],
                                       r['seconds'], r['excess_ms'],
                 r['growth_ms']['first_third_p95'], r['growth_ms']['last_third_p95']))


# ------------------------------------------------------------------------------------------- main


def bench_variant(variant, specs, args, frames, boxes):
    network, _ = load_network('synthetic', variant, 'cpu')
    engines, startup_s = {}, {}
    params = TrackerParams()
    trackers = {}
    for spec in specs:
        start = time.perf_counter()
        engines[spec] = make_engine(network, spec, args.threads)
        trackers[spec] = StarkTracker(engines[spec], params)
        trackers[spec].initialize(frames[0], boxes[0])      # first template pass (lazy compilation included)
        trackers[spec].track(frames[1])                     # first search pass
        startup_s[spec] = time.perf_counter() - start
    times = time_interleaved(trackers, frames, boxes, args.warmup, args.frames, args.gap_ms)
    deviation = {}
    if not args.no_deviation:
        reference = oracle_forced_boxes(engines['torch'], variant)
        for spec in specs:
            boxes_spec = reference if spec == 'torch' else oracle_forced_boxes(engines[spec], variant)
            deviation[spec] = float('nan') if reference is None else float(np.abs(boxes_spec - reference).max())
    memory = {}
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = os.path.join(tmp, '%s.pth' % variant)
            torch.save({'net': network.state_dict()}, checkpoint)
            del engines, trackers
            gc.collect()
            for spec in specs:
                memory[spec] = measure_memory(variant, spec, checkpoint, args.threads)
    eager = float(np.median(times['torch']))
    rows = []
    for spec in specs:
        values = np.array(times[spec])
        median = float(np.median(values))
        row = {'variant': variant, 'backend': spec, 'median_ms': median,
               'p95_ms': float(np.percentile(values, 95)), 'fps': 1000.0 / median, 'ratio': median / eager,
               'peak_mb': memory.get(spec, float('nan')), 'dev_px': deviation.get(spec, float('nan')),
               'startup_s': startup_s[spec]}
        rows.append(row)
    return rows


def print_table(rows):
    header = '%-9s %-22s %9s %8s %7s %6s %8s %8s %8s' % ('variant', 'backend', 'median ms', 'p95 ms', 'FPS',
                                                        'ratio', 'peak MB', 'dev px', 'start s')
    print(header)
    print('-' * len(header))
    for r in rows:
        print('%-9s %-22s %9.1f %8.1f %7.1f %6.2f %8.0f %8.3f %8.1f' % (
            r['variant'], r['backend'], r['median_ms'], r['p95_ms'], r['fps'], r['ratio'], r['peak_mb'],
            r['dev_px'], r['startup_s']))


def _precision(spec):
    """The precision of a backend spec ('fp32' when not given)."""
    return parse_spec(spec)[1]


def print_targets(rows):
    """The issue's targets as PASS/FAIL lines (only those whose rows were measured)."""
    by = {(r['variant'], r['backend']): r for r in rows}
    fast = by.get(('st50', 'torch-fast:fp32'))
    if fast:
        others = ['%s %.3f x' % (r['backend'], r['ratio']) for r in rows if r['variant'] == 'st50'
                  and r['backend'] not in ('torch', 'torch-fast:fp32') and _precision(r['backend']) == 'fp32']
        print('%s  ST50 torch-fast fp32 <= 0.60 x eager: %.3f x (%.1f ms)%s'
              % ('PASS' if fast['ratio'] <= 0.60 else 'FAIL', fast['ratio'], fast['median_ms'],
                 '; other fp32 engines: ' + ', '.join(others) if others else ''))
    st50 = [r for r in rows if r['variant'] == 'st50' and r['backend'] != 'torch']
    if st50:
        def meets(r):
            return r['ratio'] <= 0.35 and r['fps'] >= 15.0 and r['dev_px'] <= 1.0
        passing = [r for r in st50 if meets(r)]
        best = min(passing or st50, key=lambda r: r['median_ms'])
        ok = bool(passing)
        print('%s  ST50 best CPU path (%s) <= 0.35 x eager, >= 15 FPS, boxes within 1 px of fp32 (forced oracle): '
              '%.2f x, %.1f FPS, %.2f px' % ('PASS' if ok else 'FAIL', best['backend'], best['ratio'], best['fps'],
                                            best['dev_px']))
    light = [r for r in rows if r['variant'] == 'lightning']
    if light:
        best = max(light, key=lambda r: r['fps'])
        print('%s  Lightning >= 40 FPS: %.1f FPS (%s)' % ('PASS' if best['fps'] >= 40.0 else 'FAIL', best['fps'],
                                                        best['backend']))
    lite0 = [r for r in rows if r['variant'] == 'lite0']
    if lite0:
        best = max(lite0, key=lambda r: r['fps'])
        fp32 = max((r for r in lite0 if _precision(r['backend']) == 'fp32'), key=lambda r: r['fps'])
        print('%s  lite0 >= 50 FPS (issue 9): %.1f FPS (%s); best fp32: %.1f FPS (%s)'
              % ('PASS' if best['fps'] >= 50.0 else 'FAIL', best['fps'], best['backend'], fp32['fps'],
                 fp32['backend']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--variants', default=','.join(VARIANTS))
    parser.add_argument('--backends', default=None, help='comma-separated specs (default: every available one)')
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=available_cores())
    parser.add_argument('--gap-ms', type=float, default=5.0,
                        help='sleep before each timed call so the previous runtime\'s threads stop spinning')
    parser.add_argument('--no-memory', action='store_true', help='skip the per-backend memory child processes')
    parser.add_argument('--no-deviation', action='store_true', help='skip the oracle forced-run box deviation')
    parser.add_argument('--node-seconds', type=float, default=0.0,
                        help='also run the ROS node for this long per variant and node backend (0: skip)')
    parser.add_argument('--node-backends', default='torch', help='comma-separated name[:precision] for the node')
    parser.add_argument('--json', default=None, help='also write the rows to this JSON file')
    parser.add_argument('--memory-child', nargs=2, metavar=('VARIANT', 'BACKEND'), help=argparse.SUPPRESS)
    parser.add_argument('--memory-checkpoint', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tune_allocator()    # as the node and the tools do (stark_ros/allocator.py)
    if args.memory_child:
        return memory_child(args)
    torch.set_num_threads(args.threads)
    specs = args.backends.split(',') if args.backends else default_backends()
    if 'torch' not in specs:
        specs.insert(0, 'torch')          # the eager baseline of every ratio
    variants = args.variants.split(',')
    frames, boxes = synthetic_sequence(max(64, args.warmup + args.frames + 1))
    print('stark_ros tracker benchmark: torch %s, %d threads, %d warm-up + %d frames 640x480, cpu bf16: %s'
          % (torch.__version__, args.threads, args.warmup, args.frames, cpu_supports_bf16()))
    rows = []
    start = time.perf_counter()
    for variant in variants:
        rows.extend(bench_variant(variant, specs, args, frames, boxes))
        sys.stderr.write('%s done after %.0f s\n' % (variant, time.perf_counter() - start))
    print_table(rows)
    print()
    print_targets(rows)
    node_results = []
    if args.node_seconds > 0:
        for variant in variants:
            for spec in args.node_backends.split(','):
                node_results.append(node_latency(variant, spec, args.node_seconds))
                sys.stderr.write('node %s %s done after %.0f s\n' % (variant, spec, time.perf_counter() - start))
        print()
        print_node_table(node_results)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'tracker': rows, 'node': node_results}, f, indent=2, default=float)
    return 0


if __name__ == '__main__':
    sys.exit(main())
