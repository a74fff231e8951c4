"""stark_ros: ROS 2 (ament_python) package of the STARK visual tracker.

Installed two ways:
  * on a robot, by colcon (see README): scripts go to lib/stark_ros via setup.cfg;
  * here, by scripts/setup.sh with `pip install --no-deps .` into .venv (not -e: editable
    installs skip data_files). setup.sh then links the console scripts into .venv/lib/stark_ros.

Runtime Python dependencies are declared in package.xml (rosdep) and pinned in requirements.txt (pip),
not in install_requires: ROS distributions provide numpy/OpenCV as system packages that pip metadata
does not see, and an unpinned `torch` requirement would pull a multi-GB CUDA build.
"""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'stark_ros'


def files(pattern):
    return sorted(f for f in glob(pattern) if os.path.isfile(f))


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*']),
    package_data={PACKAGE + '.datasets': ['lasot_test.txt'], PACKAGE + '.console': ['static/*'], PACKAGE + '.training': ['configs/*.yaml', 'configs/*.txt'],
                  # the shipped STARK-lite0 model (an empty checkpoint), with its recipe, training log and README
                  PACKAGE + '.model': ['weights/*.pth.tar', 'weights/*.yaml', 'weights/*.csv', 'weights/*.md']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', files('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', files('config/*.yaml') + files('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    python_requires='>=3.8',
    maintainer='stark_ros maintainers',
    maintainer_email='noreply@example.com',
    description='ROS 2 node for the STARK visual tracker: several targets, target states and re-detection, web console',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'tracker_node = stark_ros.ros.tracker_node:main',
            'lifecycle_tracker_node = stark_ros.ros.lifecycle_node:main',
            'console = stark_ros.console.main:main',
            'stark_track = stark_ros.track:main',
            'stark_demo = stark_ros.demo:main',
            'stark_evaluate = stark_ros.evaluate:main',
            'stark_train = stark_ros.train:main',
        ],
    },
)
