"""Operator web console of the stark_tracker node: ``ros2 run stark_ros console`` or ``python -m stark_ros.console``.

A page on a local port (``http://127.0.0.1:8080/`` by default) shows the live image with every target's box, id,
score and state, lets the operator drag a box to start or replace a target and reset one or all targets, and shows
the tracker's rates and latency from ``/diagnostics``.

Modules: :mod:`~stark_ros.console.node` (the ROS side), :mod:`~stark_ros.console.web` (the aiohttp side and its
static page), :mod:`~stark_ros.console.bridge` (what the two share), :mod:`~stark_ros.console.validation` (checks of
the page's requests), :mod:`~stark_ros.console.main` (the executable).
"""
