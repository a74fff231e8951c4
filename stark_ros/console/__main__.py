"""``python -m stark_ros.console [--ros-args ...]``: see :func:`stark_ros.console.main.main`."""
import sys

from stark_ros.console.main import main

sys.exit(main())
