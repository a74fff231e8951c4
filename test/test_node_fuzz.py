"""Hostile input over DDS (short profile; ``bench/fuzz_node.py`` runs >= 10,000 cases): generated images of every
field variety and generated ``~/init_target`` requests, interleaved with valid frames. The node never dies,
answers every request, and tracks exactly afterwards. See ``test/hostile.py``."""
import os

import pytest
from hypothesis import HealthCheck, given, settings

import hostile
from conftest import TrackerHarness, start_tracker_node
from oracles import oracle

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope='module')
def driver(ros_runner, ros_namespace):
    namespace = ros_namespace + '/fuzz'
    node = start_tracker_node(ros_runner, namespace, checkpoint='synthetic', variant='lightning', device='cpu')
    harness = TrackerHarness(ros_runner, namespace)
    harness.wait_connected()
    yield hostile.FuzzDriver(node, harness, oracle('lightning'))
    harness.close()
    ros_runner.remove(node)


@settings(max_examples=int(os.environ.get("STARK_FUZZ_EXAMPLES", 40)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.function_scoped_fixture])
@given(steps=hostile.actions)
def _fuzz(driver, steps):
    # tracker errors are allowed (e.g. a valid image of another size than the target's: the crop misses it; the
    # node logs and counts them); dying, an unanswered request or a lost image are not
    assert driver.run(steps) == []
    assert driver.node._worker.is_alive()


def test_hostile_images_and_requests_never_break_the_node(driver):
    _fuzz(driver)
    assert driver.cases >= 40
    assert driver.check_health() is None, driver.failures
    stats = driver.node.stats()
    assert stats['rejected'] > 0 and stats['received'] > 0 and stats['inits'] > 0, stats
    assert driver.node.tracker is not None and driver.node._worker.is_alive()
