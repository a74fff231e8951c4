"""Helpers of the console tests: the console executable in a subprocess, and a headless Chromium (Debian's chromium
and chromium-driver packages, which scripts/setup.sh installs) driven by Selenium."""
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO_ROOT

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'


class ConsoleProcess:
    """``python -m stark_ros.console`` (the working tree's) in ``namespace`` on a free port of 127.0.0.1; ``url`` is
    the address it printed. Inherits the test's hermetic ROS environment (conftest)."""

    def __init__(self, namespace, *params, timeout=30.0):
        cmd = [sys.executable, '-m', 'stark_ros.console', '--ros-args', '-r', '__ns:=' + namespace, '-p', 'port:=0']
        for param in params:
            cmd += ['-p', param]
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = None
        deadline = time.monotonic() + timeout
        while self.url is None:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                pytest.fail('the console did not start within %.0f s:\n%s' % (timeout, ''.join(self.output)))
            if line is None:
                pytest.fail('the console exited (%s):\n%s' % (self.proc.wait(), ''.join(self.output)))
            if line.startswith('stark_ros console: '):
                self.url = line.split(': ', 1)[1].strip()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def close(self):
        """SIGINT, as Ctrl-C; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def chromium_driver(width=1400, height=900):
    """A headless Chromium WebDriver; fails the test (does not skip) when the browser is missing, since
    scripts/setup.sh installs it."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail('headless Chromium is missing (%s, %s): scripts/setup.sh installs the Debian packages chromium '
                    'and chromium-driver with apt-get (as root); install them and re-run' % (CHROMIUM, CHROMEDRIVER))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=%d,%d' % (width, height), '--force-device-scale-factor=1'):
        options.add_argument(arg)
    # the driver given explicitly: Selenium Manager (which would download one) is never run
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def drag_box(driver, box, image_width, during=None):
    """Drag the mouse over the page's image from the top-left to the bottom-right corner of ``box`` (x, y, w, h,
    image pixels), as an operator would (press, move in steps, release); ``during()`` is called half-way, with
    the button held down."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    img = driver.find_element(By.ID, 'frame')
    rect = driver.execute_script('const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];', img)
    scale = rect[0] / image_width
    x, y, w, h = box
    # Selenium 4 offsets are from the element's centre, in CSS pixels
    start = (x * scale - rect[0] / 2.0, y * scale - rect[1] / 2.0)
    actions = ActionChains(driver, duration=20)
    actions.move_to_element_with_offset(img, int(round(start[0])), int(round(start[1]))).click_and_hold()
    steps = 6
    done = [0, 0]
    for i in range(1, steps + 1):
        target = (int(round(w * scale * i / steps)), int(round(h * scale * i / steps)))
        actions.move_by_offset(target[0] - done[0], target[1] - done[1])
        done = list(target)
        if i == steps // 2 and during is not None:
            actions.perform()
            during()
            actions = ActionChains(driver, duration=20)
    actions.release().perform()
    return scale


def page_boxes(driver):
    """The boxes the page draws: ``{id: {'box': (x, y, w, h) px, 'stamp': 'sec.nanosec', 'score', 'state'}}``."""
    items = driver.execute_script('''
        return Array.from(document.querySelectorAll('#overlay .target-box')).map((el) => [el.dataset.id,
            +el.dataset.x, +el.dataset.y, +el.dataset.w, +el.dataset.h, el.dataset.stamp, el.dataset.score,
            el.dataset.state]);''')
    return {i[0]: {'box': tuple(i[1:5]), 'stamp': i[5], 'score': float(i[6]) if i[6] else None, 'state': i[7]}
            for i in items}
