"""Fuzz the running node over DDS with hypothesis: at least ``--cases`` hostile inputs (default 10,000).

    .venv/bin/python bench/fuzz_node.py [--cases 10000] [--batch 500]

The strategies and the driver are ``test/hostile.py`` (the test suite runs a short profile of the same,
``test/test_node_fuzz.py``): generated images of every field variety and ``~/init_target`` requests of every hostile
kind, in sequences interleaved with valid frames and valid inits, sent to an in-process ``TrackerNode`` (Lightning,
seed-0 weights) through real DDS on a hermetic domain. After every batch the node must still track exactly
(oracle boxes). Prints the cases, the failures (unanswered requests, images that never reached the node, health
checks that failed, a dead worker), the node's counters and the process's resident memory.
"""
import argparse
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, 'test')]

import conftest  # noqa: E402  (hermetic ROS environment: set before rclpy is imported)
import hostile  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from oracles import oracle  # noqa: E402


def rss_mb():
    """Resident memory of this process (node, harness and DDS), MB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', type=int, default=10000, help='hostile inputs to send (at least)')
    parser.add_argument('--batch', type=int, default=500, help='hypothesis examples between health checks')
    args = parser.parse_args(argv)

    from stark_ros.allocator import tune_allocator
    tune_allocator()          # as tracker_node does
    runner = conftest.RosRunner()
    namespace = '/stark_fuzz_%d' % os.getpid()
    node = conftest.start_tracker_node(runner, namespace, checkpoint='synthetic', variant='lightning', device='cpu')
    harness = conftest.TrackerHarness(runner, namespace)
    harness.wait_connected()
    driver = hostile.FuzzDriver(node, harness, oracle('lightning'))
    assert driver.check_health() is None, driver.failures
    start_rss, peak_rss = rss_mb(), rss_mb()
    started = time.monotonic()
    print('fuzzing %s: target %d cases, RSS at start %.0f MB' % (namespace, args.cases, start_rss), flush=True)

    @settings(max_examples=args.batch, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(steps=hostile.actions)
    def batch(steps):
        try:                     # failures are collected, not raised: the run goes on and counts them
            driver.run(steps)
        except Exception as err:  # noqa: BLE001 - a harness error is a failure of this case, not of the run
            driver.failures.append('exception in the harness: %s: %s' % (type(err).__name__, err))

    batches = 0
    try:
        while driver.cases < args.cases:
            batch()
            batches += 1
            driver.check_health()
            peak_rss = max(peak_rss, rss_mb())
            alive = node._worker.is_alive()
            if not alive:
                driver.failures.append('worker thread died')
            stats = node.stats()
            print('[%5.0f s] cases %d, failures %d, RSS %.0f MB; node: received %d, rejected %d, inits %d, '
                  'tracked %d, tracker errors %d' % (time.monotonic() - started, driver.cases, len(driver.failures),
                                                     rss_mb(), stats['received'], stats['rejected'], stats['inits'],
                                                     stats['processed'], stats['errors']), flush=True)
            if not alive:
                break
    finally:
        stats = node.stats()
        end_rss = rss_mb()
        harness.close()
        runner.remove(node)
        runner.shutdown()
    print('RESULT cases %d (in %d batches, %.0f s), failures %d, node: received %d images, rejected %d malformed, '
          '%d successful inits, %d tracked, %d tracker errors; RSS start %.0f MB, end %.0f MB, peak %.0f MB'
          % (driver.cases, batches, time.monotonic() - started, len(driver.failures), stats['received'],
             stats['rejected'], stats['inits'], stats['processed'], stats['errors'], start_rss, end_rss, peak_rss))
    for failure in driver.failures[:20]:
        print('FAILURE', failure)
    return 1 if driver.failures else 0


if __name__ == '__main__':
    sys.exit(main())
