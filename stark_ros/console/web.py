"""The console's web side: an aiohttp application serving the page (static HTML/JS/CSS) and a small JSON API.

Routes (nothing else is served; the only requests that change anything are the two ``POST``s, and they only start or
reset targets):

* ``GET /``: the page; ``GET /static/<file>``: its script and style sheet.
* ``GET /api/state``: :meth:`stark_ros.console.bridge.ConsoleState.snapshot` as JSON.
* ``GET /api/frame.jpg?after=SEQ``: the newest image as JPEG, waiting up to ``FRAME_WAIT_SEC`` for one newer than
  ``SEQ``; headers ``X-Frame-Seq``, ``X-Stamp-Sec``, ``X-Stamp-Nanosec``, ``X-Width``, ``X-Height`` (the page sends
  that stamp with a box drawn on the image). 503 before the first image.
* ``POST /api/init`` ``{"box": [x, y, w, h], "stamp": {"sec": s, "nanosec": n}, "id": "..."}`` (box: top-left + size,
  pixels of the image with that stamp): calls the tracker's ``~/init_target``.
* ``POST /api/reset`` ``{"id": "..."}`` ('' = every target): calls the tracker's ``~/reset``.

Answers of the ``POST``s: ``{"success": bool, "message": str}`` with 200 (done), 400 (malformed request, see
:mod:`stark_ros.console.validation`), 403 (cross-site request), 409 (the tracker refused), 415 (not JSON),
503 (tracker service not available) or 504 (no answer within ``SERVICE_TIMEOUT_SEC``).

Bound to a loopback address (the default), the server answers only requests whose ``Host`` is a loopback name
(``localhost``, ``127.x.x.x``, ``[::1]``): a web page whose own name an attacker points at 127.0.0.1 (DNS rebinding)
gets 403 for everything.
"""
import asyncio
import ipaddress
import json
import os

from aiohttp import web

from stark_ros.console.validation import ConsoleRequestError, explain_init_failure, parse_init, parse_reset

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
#: Longest wait of ``GET /api/frame.jpg`` for a newer image, seconds.
FRAME_WAIT_SEC = 1.0
#: Longest wait for a tracker service answer, seconds (``~/init_target`` may wait for the model to be idle).
SERVICE_TIMEOUT_SEC = 15.0
#: Largest request body accepted, bytes.
MAX_BODY_BYTES = 16 * 1024


def _answer(status, success, message):
    return web.json_response({'success': success, 'message': message}, status=status)


async def _await_ros_future(future, timeout):
    """Wait for an rclpy Future (completed by the ROS executor thread) from the event loop; None after ``timeout``."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(done.set))
    if not future.done():
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except asyncio.TimeoutError:
            return None
    return future.result()


def is_loopback(host):
    """True for ``localhost`` and loopback IP addresses (``127.0.0.1``, ``::1``, ``[::1]``)."""
    host = host.strip('[]').lower()
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header):
    """The name part of a ``Host`` header (``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``)."""
    if host_header.startswith('['):
        return host_header[1:].split(']', 1)[0]
    return host_header.rsplit(':', 1)[0] if host_header.count(':') == 1 else host_header


class ConsoleApp:
    """The aiohttp application of a :class:`stark_ros.console.node.ConsoleNode` (``node.state`` is read, its
    ``call_init`` / ``call_reset`` are called). ``loopback_only``: answer only requests addressed to a loopback name
    (see the module docstring); the default follows the node's ``host``."""

    def __init__(self, node, loopback_only=None):
        self.node = node
        self.state = node.state
        self.loopback_only = is_loopback(node.host) if loopback_only is None else loopback_only
        self.app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._headers])
        self.app.add_routes([
            web.get('/', self.index),
            web.static('/static', STATIC_DIR, show_index=False, follow_symlinks=False),
            web.get('/api/state', self.get_state),
            web.get('/api/frame.jpg', self.get_frame),
            web.post('/api/init', self.post_init),
            web.post('/api/reset', self.post_reset),
        ])

    @web.middleware
    async def _headers(self, request, handler):
        if self.loopback_only and not is_loopback(_host_name(request.host or '')):
            response = _answer(403, False, 'this console answers requests to localhost only, not to %r'
                               % (request.host,))
        else:
            response = await handler(request)
        response.headers['Cache-Control'] = 'no-store'
        response.headers['X-Content-Type-Options'] = 'nosniff'
        response.headers['X-Frame-Options'] = 'DENY'
        return response

    async def index(self, request):
        return web.FileResponse(os.path.join(STATIC_DIR, 'index.html'))

    async def get_state(self, request):
        return web.json_response(self.state.snapshot())

    async def get_frame(self, request):
        try:
            after = int(request.query.get('after', '0'))
        except ValueError:
            return _answer(400, False, 'after must be an integer frame counter')
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FRAME_WAIT_SEC
        while self.state.latest_seq() <= after and loop.time() < deadline:
            await asyncio.sleep(0.01)
        frame = await loop.run_in_executor(None, self.state.frame)   # JPEG encoding off the event loop
        if frame is None:
            return _answer(503, False, 'no image received yet')
        return web.Response(body=frame.jpeg, content_type='image/jpeg', headers={
            'X-Frame-Seq': str(frame.seq), 'X-Stamp-Sec': str(frame.stamp[0]), 'X-Stamp-Nanosec': str(frame.stamp[1]),
            'X-Width': str(frame.width), 'X-Height': str(frame.height)})

    async def _json_body(self, request):
        """The request's JSON body; raises an HTTP answer (403 cross-site, 415 not JSON, 400 bad JSON)."""
        origin = request.headers.get('Origin')
        if origin is not None and origin.split('://', 1)[-1] != request.host:
            raise _HttpAnswer(403, 'cross-site request from %s refused' % origin)
        if request.content_type != 'application/json':
            raise _HttpAnswer(415, 'send the body as application/json')
        try:
            return json.loads(await request.text())
        except ValueError as err:
            raise _HttpAnswer(400, 'the body is not valid JSON: %s' % err)

    async def _call(self, client, call):
        if not client.service_is_ready():
            return _answer(503, False, 'tracker service %s is not available' % client.srv_name)
        response = await _await_ros_future(call(), SERVICE_TIMEOUT_SEC)
        if response is None:
            return _answer(504, False, 'tracker service %s did not answer within %.0f s'
                           % (client.srv_name, SERVICE_TIMEOUT_SEC))
        return _answer(200 if response.success else 409, bool(response.success),
                       response.message if response.success else explain_init_failure(response.message))

    async def post_init(self, request):
        try:
            checked = parse_init(await self._json_body(request), self.state.image_size)
        except _HttpAnswer as err:
            return _answer(err.status, False, err.message)
        except ConsoleRequestError as err:
            return _answer(400, False, str(err))
        return await self._call(self.node.init_client, lambda: self.node.call_init(checked))

    async def post_reset(self, request):
        try:
            target_id = parse_reset(await self._json_body(request))
            if target_id and not self.node.reset_takes_id:
                raise ConsoleRequestError('this tracker resets every target at once (std_srvs/srv/Trigger); '
                                          'reset all instead of one id')
        except _HttpAnswer as err:
            return _answer(err.status, False, err.message)
        except ConsoleRequestError as err:
            return _answer(400, False, str(err))
        answer = await self._call(self.node.reset_client, lambda: self.node.call_reset(target_id))
        if answer.status == 200:
            self.state.forget(target_id)
        return answer


class _HttpAnswer(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message
