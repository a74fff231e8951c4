"""The project's own training data, built from real images and videos that the package registries carry.

``python -m stark_ros.training.own_data --output DIR``; method and sources in README.md beside this file.
"""
