"""The ``console`` executable: the console node spun by rclpy in the main thread (which owns the signals, as in
``tracker_node``), the web server on its own asyncio loop in a second thread.

    ros2 run stark_ros console --ros-args -p port:=8080 -p host:=127.0.0.1 -r image:=/camera/image_raw
"""
import asyncio
import sys
import threading

import rclpy

from stark_ros.ros import compat


class WebServer:
    """An aiohttp server of :class:`stark_ros.console.web.ConsoleApp` on ``host:port`` in a daemon thread.

    ``start()`` returns once the socket is bound (``url`` then names the actual port, also for ``port`` 0) and raises
    ``OSError`` when it cannot bind; ``stop()`` closes it.
    """

    def __init__(self, node, host, port):
        self.node, self.host, self.port = node, host, port
        self.url = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error = None
        self._runner = None
        self._thread = threading.Thread(target=self._run, name='console-web', daemon=True)

    def _run(self):
        from aiohttp import web

        from stark_ros.console.web import ConsoleApp

        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(ConsoleApp(self.node).app, handle_signals=False, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            host, port = self._runner.addresses[0][:2]
            self.url = 'http://%s:%d/' % ('[%s]' % host if ':' in host else host, port)
        except Exception as err:  # noqa: BLE001 - handed to start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self, timeout=10.0):
        self._thread.start()
        if not self._ready.wait(timeout):
            raise OSError('web server did not start within %.0f s' % timeout)
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self, timeout=5.0):
        if self._thread.is_alive() and self._error is None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)


def main(args=None):
    """Console script ``console``: run the console until SIGINT / shutdown; returns the exit status (1: bad
    parameter or the port cannot be bound)."""
    from stark_ros.console.node import NODE_NAME, ConsoleNode

    compat.ignore_repeated_interrupts()
    rclpy.init(args=args)
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        node = ConsoleNode()
    except ValueError as err:
        logger.fatal('cannot start: %s' % err)
        rclpy.try_shutdown()
        return 1
    server = WebServer(node, node.host, node.port)
    try:
        url = server.start()
    except OSError as err:
        logger.fatal('cannot serve on %s:%d: %s' % (node.host, node.port, err))
        node.destroy_node()
        rclpy.try_shutdown()
        return 1
    node.get_logger().info('operator console on %s (tracker %s)' % (url, node.tracker_name))
    print('stark_ros console: %s' % url, flush=True)
    compat.spin_until_shutdown(node, before_destroy=server.stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
