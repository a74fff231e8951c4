"""The operator console end to end: a real stark_tracker node (the shipped STARK-lite0 model, torch backend) and the
console executable (``python -m stark_ros.console``, a subprocess) over real DDS, real frames of
``../shared/eval/human7``, and the page in headless Chromium driven by Selenium: the operator drags a box over the
walker on the displayed frame, the tracker starts on that frame (by its stamp), and the boxes the page draws follow
the walker
(IoU with the ground truth, got10k toolkit). Then the page's reset buttons, a Detection2DArray with two targets, and
the HTTP answers of the JSON API to bad requests.

Failure check: with the page sending no stamp (``stamp`` left out of the drag's request, i.e. the newest image),
``test_drag_starts_the_tracker_on_the_shown_frame`` fails: the tracker's answer names another frame.
"""
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import make_stamp, start_tracker_node, wait_for
from console_helpers import ConsoleProcess, chromium_driver, drag_box, page_boxes
from node_io_helpers import Feeder, det_box, real_frames

SEQUENCE, WIDTH, HEIGHT = 'human7', 320, 240
TARGET = 'walker'
FRAMES = 61               # frame 0 for the drag, 60 tracked
MIN_IOU = 0.05            # every tracked frame (shipped model, torch: >= 0.145; a box left at the init box: 0 min)
MIN_MEAN_IOU = 0.5        # over the tracked frames (measured 0.635 by stark_ros.evaluate, torch; the init box held:
                          # 0.392)


def _stamp_text(stamp):
    return '%d.%09d' % (stamp.sec, stamp.nanosec)


@pytest.fixture(scope='module')
def session(ros_runner, ros_namespace):
    from stark_ros.ros.image_conversion import array_to_image_msg

    namespace = ros_namespace + '/console'
    frames, _ = real_frames(SEQUENCE, FRAMES)
    from dataset_layouts import source_sequence
    _, gt = source_sequence(SEQUENCE, FRAMES)
    tracker = start_tracker_node(ros_runner, namespace)
    console = ConsoleProcess(namespace)
    feeder = Feeder(ros_runner, namespace, tracker)
    msgs = [array_to_image_msg(f, 'bgr8', stamp=make_stamp(i, base_sec=9000), frame_id='cam')
            for i, f in enumerate(frames)]
    driver = chromium_driver()
    try:
        driver.get(console.url)
        yield {'tracker': tracker, 'console': console, 'feeder': feeder, 'driver': driver, 'msgs': msgs, 'gt': gt,
               'namespace': namespace, 'runner': ros_runner}
    finally:
        driver.quit()
        feeder.close()
        assert console.close() == 0, ''.join(console.output)
        ros_runner.remove(tracker)


def _shown_stamp(driver):
    return driver.execute_script("return document.getElementById('view').dataset.stamp || ''")


def _show(session, msg, timeout=15.0):
    """Publish ``msg`` until the page displays it (best-effort image QoS may drop a sample)."""
    want = _stamp_text(msg.header.stamp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session['feeder'].image_pub.publish(msg)
        if wait_for(lambda: _shown_stamp(session['driver']) == want, 0.5, 0.05):
            return
    pytest.fail('the page never showed frame %s (shows %r)' % (want, _shown_stamp(session['driver'])))


def _text(driver, element_id):
    return driver.execute_script('return document.getElementById(arguments[0]).textContent', element_id)


def _message(driver):
    return driver.execute_script("const m = document.getElementById('message'); return [m.dataset.success || '', "
                                 "m.textContent];")


def test_page_shows_the_image_and_the_diagnostics(session):
    driver = session['driver']
    _show(session, session['msgs'][0])
    assert driver.find_element('id', 'view').get_attribute('data-width') == str(WIDTH)
    assert wait_for(lambda: 'Hz' in _text(driver, 'diag-input') and _text(driver, 'diag-level') == 'OK', 5.0), \
        (_text(driver, 'diag-level'), _text(driver, 'diag-input'))
    assert 'idle' in _text(driver, 'diag-message')
    assert wait_for(lambda: _text(driver, 'services') == 'tracker connected', 5.0), _text(driver, 'services')


def test_drag_starts_the_tracker_on_the_shown_frame(session):
    driver, tracker, msgs = session['driver'], session['tracker'], session['msgs']
    _show(session, msgs[0])
    driver.find_element('id', 'target-id').send_keys(TARGET)
    gt0 = tuple(float(v) for v in session['gt'][0])

    def next_frame_arrives():
        """While the operator drags, frame 1 arrives: the tracker's newest image is frame 1, while the page keeps
        showing frame 0 until the button is released."""
        assert session['feeder'].publish(msgs[1])
        time.sleep(0.5)
        assert _shown_stamp(driver) == _stamp_text(msgs[0].header.stamp)
    drag_box(driver, gt0, WIDTH, during=next_frame_arrives)
    assert wait_for(lambda: _message(driver)[0] in ('true', 'false'), 20.0), _message(driver)
    success, text = _message(driver)
    assert success == 'true', text
    assert _stamp_text(msgs[0].header.stamp) in text, text   # initialised on the frame the box was drawn on
    assert tracker.stats()['tracking']


def test_page_boxes_follow_the_target(session):
    """Frames 1.. are fed one at a time; the page draws each frame's detection (same box, same stamp), and the boxes
    overlap the ground truth."""
    rect_iou = pytest.importorskip('got10k.utils.metrics').rect_iou   # the toolkit's IoU (pip test requirement)
    driver, feeder, msgs, gt = session['driver'], session['feeder'], session['msgs'], session['gt']
    ious = []
    for t in range(2, FRAMES):
        det = feeder.feed(msgs[t])
        assert det is not None and det.id == TARGET, t
        want = _stamp_text(msgs[t].header.stamp)
        assert wait_for(lambda: page_boxes(driver).get(TARGET, {}).get('stamp') == want, 5.0, 0.05), \
            (t, page_boxes(driver))
        shown = page_boxes(driver)[TARGET]
        assert np.allclose(shown['box'], det_box(det), atol=1e-3), (shown, det_box(det))
        assert shown['state'] in ('tracking', 'uncertain', 'lost') and 0.0 <= shown['score'] <= 1.0
        ious.append(float(rect_iou(np.array([shown['box']]), np.array([gt[t]]))[0]))
    assert min(ious) > MIN_IOU and np.mean(ious) > MIN_MEAN_IOU, np.round(ious, 3)
    row = driver.execute_script("return document.querySelector('#targets tr.target-row').textContent")
    assert row.startswith(TARGET) and any(state in row for state in ('tracking', 'uncertain', 'lost'))
    assert wait_for(lambda: 'tracking' in _text(driver, 'diag-message'), 3.0), _text(driver, 'diag-message')


def test_reset_buttons(session):
    driver, tracker = session['driver'], session['tracker']
    from stark_ros.console.node import reset_service_type
    _, takes_id = reset_service_type()
    button = 'reset-all' if not takes_id else None
    if button:
        driver.find_element('id', 'reset-all').click()
    else:
        driver.find_element('css selector', '#targets tr[data-id="walker"] button.reset-one').click()
    assert wait_for(lambda: _message(driver)[0] == 'true', 10.0), _message(driver)
    assert not tracker.stats()['tracking']
    assert wait_for(lambda: TARGET not in page_boxes(driver), 3.0)


def test_reset_all_drops_every_target(session):
    """Two targets started through the page's own API call on the frame it shows, then "Reset all targets": the
    tracker has none left and the page draws none (with Reset.srv, where test_reset_buttons clicks a row's button)."""
    driver, tracker, msgs = session['driver'], session['tracker'], session['msgs']
    _show(session, msgs[3])
    for target_id, box in (('left', [40, 60, 40, 80]), ('right', [200, 60, 40, 80])):
        answer = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "post('/api/init', {box: arguments[1], stamp: {sec: shown.stamp[0], nanosec: shown.stamp[1]},"
            " id: arguments[0]}).then(done);", target_id, box)
        assert answer['success'], answer
    assert sorted(tracker.target_ids()) == ['left', 'right']
    driver.find_element('id', 'reset-all').click()
    assert wait_for(lambda: not tracker.target_ids(), 10.0), (tracker.target_ids(), _message(driver))
    assert wait_for(lambda: _message(driver)[0] == 'true', 5.0), _message(driver)      # the tracker's answer shown
    assert not tracker.stats()['tracking']
    assert wait_for(lambda: not {'left', 'right'} & set(page_boxes(driver)), 5.0), page_boxes(driver)


def test_detection_arrays_show_every_target(session):
    """A Detection2DArray (the multi-target output) with two targets: the page draws both."""
    from stark_ros.ros.messages import make_detection
    from vision_msgs.msg import Detection2DArray
    import rclpy
    runner, driver, msgs = session['runner'], session['driver'], session['msgs']
    node = rclpy.create_node('console_array_source', namespace=session['namespace'], context=runner.context)
    pub = node.create_publisher(Detection2DArray, 'detections', 10)
    runner.add(node)
    try:
        array = Detection2DArray()
        array.header = msgs[5].header
        array.detections = [make_detection(msgs[5].header, (10, 20, 30, 40), 0.9, 'left', 'object'),
                            make_detection(msgs[5].header, (300, 100, 50, 60), 0.7, 'right', 'object')]

        def both():
            pub.publish(array)
            return {'left', 'right'} <= set(page_boxes(driver))
        assert wait_for(both, 10.0, 0.2), page_boxes(driver)
        boxes = page_boxes(driver)
        assert boxes['left']['box'] == (10, 20, 30, 40) and boxes['right']['box'] == (300, 100, 50, 60)
        assert boxes['right']['score'] == pytest.approx(0.7)
    finally:
        runner.remove(node)


def _request(url, body=None, content_type='application/json', headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method='GET' if data is None else 'POST')
    if data is not None:
        req.add_header('Content-Type', content_type)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize('path, body, kind, status, words', [
    ('api/init', {'box': [310, 10, 20, 20]}, 'json', 400, ['not inside', '320 x 240']),
    ('api/init', {'box': [10, 10, float('nan'), 20]}, 'json', 400, ['finite']),
    ('api/init', {'box': [10, 10, 20, 20], 'stamp': {'sec': 1, 'nanosec': 2}}, 'json', 400, ['no image with stamp']),
    ('api/init', {'box': [10, 10, 20, 20], 'id': 'a\nb'}, 'json', 400, ['printable']),
    ('api/init', {'box': [10, 10, 20, 20], 'checkpoint': 'x'}, 'json', 400, ['unknown field']),
    ('api/init', b'{"box": [1, 2', 'json', 400, ['not valid JSON']),
    ('api/init', {'box': [10, 10, 20, 20]}, 'text/plain', 415, ['application/json']),
    ('api/init', {'box': [10, 10, 20, 20]}, 'cross-site', 403, ['cross-site']),
    ('api/reset', {'id': 'x' * 65}, 'json', 400, ['at most 64']),
    ('api/reset', {'id': ''}, 'cross-site', 403, ['cross-site']),
])
def test_api_refuses_bad_requests(session, path, body, kind, status, words):
    before = session['tracker'].stats()
    headers = {'Origin': 'http://evil.example'} if kind == 'cross-site' else {}
    code, raw = _request(session['console'].url + path, body,
                         'text/plain' if kind == 'text/plain' else 'application/json', headers)
    answer = json.loads(raw)
    assert code == status and answer['success'] is False, (code, answer)
    for word in words:
        assert word in answer['message'], answer
    assert session['tracker'].stats()['tracking'] == before['tracking']


def test_requests_to_other_host_names_are_refused(session):
    """DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1 reaches the port, but its requests carry
    ``Host: evil.example``; bound to 127.0.0.1, the console answers them 403."""
    url = session['console'].url
    port = url.rsplit(':', 1)[1].strip('/')
    for path, body in (('api/state', None), ('api/frame.jpg', None), ('api/reset', {'id': ''}), ('', None)):
        code, raw = _request(url + path, body, headers={'Host': 'evil.example:' + port})
        assert code == 403 and 'localhost only' in json.loads(raw)['message'], (path, code)
    assert _request(url.replace('127.0.0.1', 'localhost') + 'api/state')[0] == 200


def test_api_serves_nothing_else(session):
    url = session['console'].url
    assert _request(url + 'api/init')[0] == 405          # GET on a POST route
    assert _request(url + 'api/params', {'x': 1})[0] == 404
    assert _request(url + 'static/../node.py')[0] == 404
    code, raw = _request(url + 'api/state')
    state = json.loads(raw)
    assert code == 200 and state['frame']['width'] == WIDTH and state['services']['init_target'] is True


def test_compressed_input_is_shown_as_sent(ros_runner, ros_namespace):
    """``image_transport:=compressed``: the console subscribes ``<image>/compressed`` and hands the camera's JPEG to
    the page unchanged."""
    import rclpy
    from sensor_msgs.msg import CompressedImage
    from stark_ros.ros.compressed import compressed_msg, encode_bgr
    namespace = ros_namespace + '/console_compressed'
    frames, _ = real_frames(SEQUENCE, 1)
    jpeg = encode_bgr(frames[0], 'jpeg', 70)
    msg = compressed_msg(jpeg, 'jpeg', stamp=make_stamp(1, base_sec=9500))
    console = ConsoleProcess(namespace, 'image_transport:=compressed')
    node = rclpy.create_node('console_camera', namespace=namespace, context=ros_runner.context)
    pub = node.create_publisher(CompressedImage, 'image/compressed', 10)
    ros_runner.add(node)
    try:
        def shown():
            pub.publish(msg)
            return _request(console.url + 'api/frame.jpg?after=0')
        assert wait_for(lambda: shown()[0] == 200, 15.0, 0.2), console.output
        code, body = shown()
        assert body == jpeg
    finally:
        ros_runner.remove(node)
        assert console.close() == 0, ''.join(console.output)


@pytest.mark.parametrize('params, words', [
    (['image_transport:=theora'], ['image_transport must be one of raw, compressed']),
    (['tracker_node:=" "'], ['tracker_node must be a node name']),
    (['tracker_node:= '], ['parameter tracker_node']),
    (['port:=eighty'], ['parameter port']),
    (['port:=70000'], ['parameter port']),
    (['jpeg_quality:=0'], ['parameter jpeg_quality']),
])
def test_bad_parameters_stop_the_console_with_a_reason(ros_namespace, params, words):
    import subprocess
    import sys
    from conftest import REPO_ROOT
    cmd = [sys.executable, '-m', 'stark_ros.console', '--ros-args', '-r', '__ns:=' + ros_namespace + '/bad']
    for p in params:
        cmd += ['-p', p]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    for word in words:
        assert word in result.stderr + result.stdout, result


def test_a_busy_port_stops_the_console_with_a_reason(ros_namespace):
    import socket
    import subprocess
    import sys
    from conftest import REPO_ROOT
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, '-m', 'stark_ros.console', '--ros-args', '-r',
                                 '__ns:=' + ros_namespace + '/busy', '-p', 'port:=%d' % port],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert 'cannot serve on 127.0.0.1:%d' % port in result.stderr + result.stdout, result
