"""A checkpoint written by the trainer runs in the ROS node (real rclpy, real DDS) as it is, with the same boxes
as the ROS-free tracker on that checkpoint."""
import numpy as np
import pytest
import torch

from conftest import TrackerHarness, make_stamp, start_tracker_node
from stark_ros.training.config import load_config
from stark_ros.training.data_setup import build_datasets
from stark_ros.training.distributed import DistContext
from stark_ros.training.trainer import Trainer
from training_frames import decode_frames
from training_helpers import fast_overrides, write_got10k_train


@pytest.fixture(scope='module')
def trained_checkpoint(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('got10k_train'))
    write_got10k_train(root)
    out = str(tmp_path_factory.mktemp('run'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = load_config('lightning', fast_overrides(root, samples=2, batch=2, small=False))
        Trainer(config, out, DistContext(), build_datasets(config)[0], progress=False, log=lambda m: None).run()
    finally:
        torch.set_num_threads(threads)
    return out + '/checkpoints/STARKLightningXtrt_ep0001.pth.tar'


def test_trained_checkpoint_tracks_in_the_node_as_in_the_tracker(ros_runner, ros_namespace, trained_checkpoint):
    from stark_ros.ros.image_conversion import array_to_image_msg
    from stark_ros.tracker import StarkTracker
    frames = decode_frames(5)                                              # BGR, as a camera driver sends
    box = (150.0, 80.0, 80.0, 60.0)
    tracker = StarkTracker.from_checkpoint(trained_checkpoint, 'auto', 'cpu')
    tracker.initialize(np.ascontiguousarray(frames[0][..., ::-1]), box)
    expected = [tracker.track(np.ascontiguousarray(f[..., ::-1])).box for f in frames[1:]]

    namespace = ros_namespace + '/trained'
    node = start_tracker_node(ros_runner, namespace, checkpoint=trained_checkpoint, device='cpu')
    harness = TrackerHarness(ros_runner, namespace)
    try:
        harness.wait_connected()
        first = array_to_image_msg(frames[0], 'bgr8', stamp=make_stamp(1, base_sec=7000), frame_id='cam')
        stamp_ns = first.header.stamp.sec * 10**9 + first.header.stamp.nanosec
        assert harness.publish_until(first, lambda: stamp_ns in node.buffered_stamps())
        response = harness.init(box)
        assert response.success, response.message
        for index, (frame, want) in enumerate(zip(frames[1:], expected), start=2):
            harness.publish(array_to_image_msg(frame, 'bgr8', stamp=make_stamp(index, base_sec=7000), frame_id='cam'))
            det = harness.next_detection()
            assert det is not None
            got = (det.bbox.center.position.x - det.bbox.size_x / 2, det.bbox.center.position.y - det.bbox.size_y / 2,
                   det.bbox.size_x, det.bbox.size_y)
            np.testing.assert_allclose(got, want, atol=1e-2)
    finally:
        harness.close()
        ros_runner.remove(node)
