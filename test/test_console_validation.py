"""Input checks of the operator console's API (stark_ros.console.validation): what the page and any hand-made request
may send to ``POST /api/init`` and ``POST /api/reset``. ROS-free; the HTTP answers are checked over a real server in
test_console.py."""
import math

import pytest

from stark_ros.console.validation import MAX_ID_LENGTH, ConsoleRequestError, InitRequest, parse_init, parse_reset

STAMP = {'sec': 1700000000, 'nanosec': 5}


def sizes(stamp):
    """The console showed one 640 x 480 image, stamped STAMP (and (0, 0) = newest maps to it)."""
    return (640, 480) if stamp in ((STAMP['sec'], STAMP['nanosec']), (0, 0)) else None


def test_valid_request():
    got = parse_init({'box': [10, 20.5, 30, 40], 'stamp': STAMP, 'id': 'person 1'}, sizes)
    assert got == InitRequest((10.0, 20.5, 30.0, 40.0), (1700000000, 5), 'person 1')
    assert all(isinstance(v, float) for v in got.box)


def test_defaults_no_stamp_no_id():
    assert parse_init({'box': [0, 0, 640, 480]}, sizes) == InitRequest((0.0, 0.0, 640.0, 480.0), (0, 0), '')


@pytest.mark.parametrize('box, words', [
    (None, ['box must be a list']),
    ([1, 2, 3], ['box must be a list']),
    ('1,2,3,4', ['box must be a list']),
    ([1, 2, 3, 4, 5], ['box must be a list']),
    ([1, 2, 'x', 4], ['box[2]', 'number']),
    ([1, True, 3, 4], ['box[1]', 'number']),
    ([math.nan, 2, 3, 4], ['box[0]', 'finite']),
    ([1, 2, math.inf, 4], ['box[2]', 'finite']),
    ([1, 2, 0, 4], ['size must be positive']),
    ([1, 2, 3, -4], ['size must be positive']),
    ([-1, 2, 3, 4], ['not inside', '640 x 480']),
    ([1, -0.5, 3, 4], ['not inside']),
    ([600, 2, 41, 4], ['not inside']),
    ([1, 400, 3, 81], ['not inside']),
    ([700, 500, 3, 4], ['not inside']),
    ([1e308, 1, 1e308, 4], ['not inside']),
])
def test_bad_boxes(box, words):
    with pytest.raises(ConsoleRequestError) as err:
        parse_init({'box': box, 'stamp': STAMP}, sizes)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize('stamp, words', [
    ({'sec': 1}, ['stamp must be']),
    ({'sec': 1, 'nanosec': 2, 'x': 3}, ['stamp must be']),
    ([1, 2], ['stamp must be']),
    ({'sec': -1, 'nanosec': 0}, ['stamp.sec']),
    ({'sec': 2 ** 31, 'nanosec': 0}, ['stamp.sec']),
    ({'sec': 1.5, 'nanosec': 0}, ['stamp.sec', 'integer']),
    ({'sec': 1, 'nanosec': 10 ** 9}, ['stamp.nanosec']),
    ({'sec': 1, 'nanosec': True}, ['stamp.nanosec']),
    ({'sec': 1700000000, 'nanosec': 6}, ['no image with stamp 1700000000.000000006']),
])
def test_bad_stamps(stamp, words):
    with pytest.raises(ConsoleRequestError) as err:
        parse_init({'box': [1, 2, 3, 4], 'stamp': stamp}, sizes)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize('target_id, words', [
    (7, ['id must be a string']),
    (['a'], ['id must be a string']),
    ('x' * (MAX_ID_LENGTH + 1), ['at most %d' % MAX_ID_LENGTH]),
    ('bad\nid', ['printable']),
    ('bell\x07', ['printable']),
    ('\u202eevil', ['printable']),
])
def test_bad_ids(target_id, words):
    for parse in (lambda: parse_init({'box': [1, 2, 3, 4], 'id': target_id}, sizes),
                  lambda: parse_reset({'id': target_id})):
        with pytest.raises(ConsoleRequestError) as err:
            parse()
        for word in words:
            assert word in str(err.value), str(err.value)


def test_good_ids():
    assert parse_init({'box': [1, 2, 3, 4], 'id': 'x' * MAX_ID_LENGTH}, sizes).target_id == 'x' * MAX_ID_LENGTH
    assert parse_init({'box': [1, 2, 3, 4], 'id': 'Öl-fass #2'}, sizes).target_id == 'Öl-fass #2'
    assert parse_reset({}) == ''
    assert parse_reset({'id': ''}) == ''
    assert parse_reset({'id': 'car'}) == 'car'


@pytest.mark.parametrize('body', [[1, 2], 'box', None, 3])
def test_body_must_be_an_object(body):
    for parse in (lambda: parse_init(body, sizes), lambda: parse_reset(body)):
        with pytest.raises(ConsoleRequestError, match='JSON object'):
            parse()


def test_unknown_fields_are_refused():
    with pytest.raises(ConsoleRequestError, match='unknown field.*checkpoint'):
        parse_init({'box': [1, 2, 3, 4], 'checkpoint': '/etc/passwd'}, sizes)
    with pytest.raises(ConsoleRequestError, match='unknown field.*all'):
        parse_reset({'all': True})


def test_is_a_value_error():
    assert issubclass(ConsoleRequestError, ValueError)


def test_a_drawn_on_image_that_left_the_buffer_is_explained():
    """The tracker's own words for a stamp that left its buffer (from a real node: test_ros_node checks them) get
    what the operator can do appended; other failures pass unchanged."""
    from stark_ros.console.validation import explain_init_failure
    tracker = ('no buffered image has stamp 12.000000000; the buffer holds 30 image(s) with stamps from 13.0 to 14.0 '
               '(frame_buffer_size=30)')
    explained = explain_init_failure(tracker)
    assert explained.startswith(tracker) and 'draw the box faster' in explained and 'frame_buffer_size' in explained
    assert explain_init_failure('box outside the image') == 'box outside the image'
