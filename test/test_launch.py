"""launch/tracker.launch.py and config/tracker.yaml against the installed package and the real node.

``launch`` / ``launch_ros`` are not installable here, so the launch file is checked statically (ast): it must
be the standard launch_ros form, name an executable that is installed (``<prefix>/lib/stark_ros/tracker_node``,
where ``ros2 launch`` looks) and config files that are installed in ``share/stark_ros/config``. Then the
installed ``tracker_node`` executable is started with ``config/tracker.yaml`` and its parameters are listed
over the real ROS parameter services: the file and the node must declare exactly the same parameters.

After editing config/ or launch/, re-install (``.venv/bin/pip install --no-deps --no-build-isolation .``).
"""
import ast
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, RosRunner, wait_for
from stark_ros.model import DEFAULT_CHECKPOINT

import yaml  # noqa: E402

LAUNCH_FILE = os.path.join(REPO_ROOT, 'launch', 'tracker.launch.py')
CONFIG_FILE = os.path.join(REPO_ROOT, 'config', 'tracker.yaml')
ROS_BUILTIN_PARAMETERS = {'use_sim_time', 'start_type_description_service'}
READ_ONLY = {'checkpoint', 'variant', 'device', 'search_size', 'num_threads', 'backend', 'precision', 'image_transport'}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and ((isinstance(n.func, ast.Name) and n.func.id == name)
                 or (isinstance(n.func, ast.Attribute) and n.func.attr == name))]


def _kwargs(call):
    return {k.arg: k.value for k in call.keywords}


def _const(node):
    assert isinstance(node, ast.Constant), ast.dump(node)
    return node.value


@pytest.fixture(scope='module')
def launch_tree():
    with open(LAUNCH_FILE) as f:
        return ast.parse(f.read(), LAUNCH_FILE)


@pytest.fixture(scope='module')
def share_dir():
    from ament_index_python import packages
    try:
        return packages.get_package_share_directory('stark_ros')
    except packages.PackageNotFoundError:
        pytest.fail('stark_ros is not installed in the ament index (run scripts/setup.sh)')


@pytest.fixture(scope='module')
def yaml_params():
    with open(CONFIG_FILE) as f:
        doc = yaml.safe_load(f)
    (key, section), = doc.items()
    assert key.split('/')[-1] == 'stark_tracker'
    return section['ros__parameters']


def test_launch_file_is_standard_launch_ros(launch_tree):
    funcs = [n.name for n in launch_tree.body if isinstance(n, ast.FunctionDef)]
    assert 'generate_launch_description' in funcs
    imported = {(n.module, a.name) for n in ast.walk(launch_tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ('launch_ros.actions', 'Node') in imported
    assert ('launch', 'LaunchDescription') in imported
    args = {_const(c.args[0]) for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    assert {'checkpoint', 'device', 'image_topic'} <= args
    nodes = {_const(_kwargs(n)['executable']): n for n in _calls(launch_tree, 'Node')}
    assert sorted(nodes) == ['console', 'tracker_node']
    kw = _kwargs(nodes['tracker_node'])
    assert _const(kw['package']) == 'stark_ros'
    assert _const(kw['name']) == 'stark_tracker'
    assert 'condition' not in kw
    remap, = kw['remappings'].elts
    assert _const(remap.elts[0]) == 'image'
    assert _calls(remap.elts[1], 'LaunchConfiguration') and _const(remap.elts[1].args[0]) == 'image_topic'
    # every LaunchConfiguration used is declared
    used = {_const(c.args[0]) for c in _calls(launch_tree, 'LaunchConfiguration')}
    assert used <= args
    # parameter overrides name real parameters of the node
    from stark_ros.ros.parameters import PARAMETERS
    dicts = [d for d in ast.walk(kw['parameters']) if isinstance(d, ast.Dict)]
    assert dicts and all(_const(k) in PARAMETERS for d in dicts for k in d.keys)
    # the image transport is a launch argument of the tracker (read-only parameter: set at start-up)
    overrides = {_const(k): v for d in dicts for k, v in zip(d.keys, d.values)}
    assert _const(_calls(overrides['image_transport'], 'LaunchConfiguration')[0].args[0]) == 'image_transport'


def test_launch_file_starts_the_console_on_request(launch_tree):
    """``console:=true`` adds the web console on the tracker's image topic, with its port and host arguments."""
    from stark_ros.console.node import PARAMETERS
    args = {_const(c.args[0]): c for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    assert {'console', 'console_port', 'console_host', 'console_image_transport'} <= set(args)
    defaults = {name: _const(_kwargs(args[name])['default_value'])
                for name in ('console', 'console_port', 'console_host', 'image_transport')}
    assert defaults == {'console': 'false', 'console_port': str(PARAMETERS['port'][0]), 'console_host': '127.0.0.1',
                        'image_transport': 'raw'}
    # the console takes the tracker's transport unless told otherwise
    transport_default = _kwargs(args['console_image_transport'])['default_value']
    assert _calls(transport_default, 'LaunchConfiguration')
    assert _const(_calls(transport_default, 'LaunchConfiguration')[0].args[0]) == 'image_transport'
    node = next(n for n in _calls(launch_tree, 'Node') if _const(_kwargs(n)['executable']) == 'console')
    kw = _kwargs(node)
    assert _const(kw['package']) == 'stark_ros' and _const(kw['name']) == 'stark_console'
    condition = kw['condition']
    assert _calls(condition, 'IfCondition') and _const(_calls(condition, 'LaunchConfiguration')[0].args[0]) == 'console'
    params, = [d for d in ast.walk(kw['parameters']) if isinstance(d, ast.Dict)]
    keys = [_const(k) for k in params.keys]
    assert set(keys) <= set(PARAMETERS) and {'port', 'host'} <= set(keys)
    configs = {_const(k): _const(_calls(v, 'LaunchConfiguration')[0].args[0])
               for k, v in zip(params.keys, params.values) if _calls(v, 'LaunchConfiguration')}
    assert configs == {'port': 'console_port', 'host': 'console_host', 'image_transport': 'console_image_transport'}
    tracker_name = next(_const(_kwargs(n)['name']) for n in _calls(launch_tree, 'Node')
                        if _const(_kwargs(n)['executable']) == 'tracker_node')
    assert _const(params.values[keys.index('tracker_node')]) == tracker_name
    remap, = kw['remappings'].elts
    assert _const(remap.elts[0]) == 'image' and _const(remap.elts[1].args[0]) == 'image_topic'


def test_launch_file_starts_the_managed_node_on_request(launch_tree):
    """``lifecycle:=true`` starts ``lifecycle_tracker_node`` (a launch_ros LifecycleNode) instead of ``tracker_node``:
    the plain node sits in a group with UnlessCondition(lifecycle), the managed one has IfCondition(lifecycle), and
    both get the same name, parameters and remapping. The default (false) starts the plain node only."""
    from ament_index_python.packages import get_package_prefix
    args = {_const(c.args[0]): c for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    assert _const(_kwargs(args['lifecycle'])['default_value']) == 'false'
    plain = next(n for n in _calls(launch_tree, 'Node') if _const(_kwargs(n)['executable']) == 'tracker_node')
    group, = _calls(launch_tree, 'GroupAction')
    assert plain in list(ast.walk(group))
    unless = _kwargs(group)['condition']
    assert _calls(unless, 'UnlessCondition') and _const(_calls(unless, 'LaunchConfiguration')[0].args[0]) == 'lifecycle'
    managed, = _calls(launch_tree, 'LifecycleNode')
    imported = {(n.module, a.name) for n in ast.walk(launch_tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ('launch_ros.actions', 'LifecycleNode') in imported
    kw, plain_kw = _kwargs(managed), _kwargs(plain)
    assert _const(kw['executable']) == 'lifecycle_tracker_node' and _const(kw['package']) == 'stark_ros'
    assert _const(kw['name']) == _const(plain_kw['name']) == 'stark_tracker'
    assert 'namespace' in kw        # required by Humble's launch_ros LifecycleNode
    condition = kw['condition']
    assert _calls(condition, 'IfCondition')
    assert _const(_calls(condition, 'LaunchConfiguration')[0].args[0]) == 'lifecycle'
    assert ast.dump(kw['parameters']) == ast.dump(plain_kw['parameters'])     # same structure, positions aside
    assert ast.dump(kw['remappings']) == ast.dump(plain_kw['remappings'])
    exe = os.path.join(get_package_prefix('stark_ros'), 'lib', 'stark_ros', 'lifecycle_tracker_node')
    assert os.path.isfile(exe) and os.access(exe, os.X_OK), exe


def test_launch_executable_and_config_are_installed(launch_tree, share_dir):
    from ament_index_python.packages import get_package_prefix
    prefix = get_package_prefix('stark_ros')
    for node in _calls(launch_tree, 'Node'):
        exe = os.path.join(prefix, 'lib', 'stark_ros', _const(_kwargs(node)['executable']))
        assert os.path.isfile(exe) and os.access(exe, os.X_OK), exe
    # the config path is os.path.join(get_package_share_directory('stark_ros'), 'config', '<file>.yaml')
    share_calls = _calls(launch_tree, 'get_package_share_directory')
    assert share_calls and all(_const(c.args[0]) == 'stark_ros' for c in share_calls)
    names = [n.value for n in ast.walk(launch_tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.endswith('.yaml')]
    assert names == ['tracker.yaml']
    for name in names:
        installed = os.path.join(share_dir, 'config', name)
        assert os.path.isfile(installed), installed
        with open(installed) as a, open(os.path.join(REPO_ROOT, 'config', name)) as b:
            assert a.read() == b.read(), '%s is stale: re-run pip install . (see module docstring)' % installed
    assert os.path.isfile(os.path.join(share_dir, 'launch', 'tracker.launch.py'))


def test_yaml_values_are_the_node_defaults(yaml_params):
    from stark_ros.ros.parameters import PARAMETERS
    assert list(yaml_params) == list(PARAMETERS)
    for name, value in yaml_params.items():
        default = PARAMETERS[name][0]
        assert type(value) is type(default) and value == default, name


@pytest.fixture(scope='module')
def node_process(ros_namespace, share_dir):
    """The installed tracker_node executable, run with config/tracker.yaml in a test namespace."""
    from ament_index_python.packages import get_package_prefix
    exe = os.path.join(get_package_prefix('stark_ros'), 'lib', 'stark_ros', 'tracker_node')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT] + sys.path[1:]), PYTHONUNBUFFERED='1')
    namespace = ros_namespace + '/launch'
    proc = subprocess.Popen(
        [exe, '--ros-args', '--params-file', CONFIG_FILE, '-p', 'device:=cpu', '-r', '__ns:=' + namespace],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runner = RosRunner()
    try:
        yield proc, runner, namespace + '/stark_tracker'
    finally:
        runner.shutdown()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _service(runner, srv_type, name, request, timeout=30.0):
    import threading

    import rclpy
    node = rclpy.create_node('stark_param_probe_%d' % int(time.monotonic() * 1e6), context=runner.context)
    runner.add(node)
    try:
        client = node.create_client(srv_type, name)
        assert wait_for(client.service_is_ready, timeout), 'service %s not available' % name
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout)
        return future.result()
    finally:
        runner.remove(node)


def test_installed_node_declares_exactly_the_yaml_parameters(node_process, yaml_params):
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python
    proc, runner, fqn = node_process

    listed = _service(runner, ListParameters, fqn + '/list_parameters', ListParameters.Request())
    names = set(listed.result.names) - ROS_BUILTIN_PARAMETERS
    assert names == set(yaml_params), 'node only: %s; yaml only: %s' % (
        sorted(names - set(yaml_params)), sorted(set(yaml_params) - names))

    ordered = list(yaml_params)
    values = _service(runner, GetParameters, fqn + '/get_parameters', GetParameters.Request(names=ordered))
    got = dict(zip(ordered, (parameter_value_to_python(v) for v in values.values)))
    expected = dict(yaml_params, device='cpu')  # device overridden on the command line
    assert got == expected

    described = _service(runner, DescribeParameters, fqn + '/describe_parameters',
                         DescribeParameters.Request(names=ordered))
    for desc in described.descriptors:
        assert desc.description, desc.name
        assert desc.read_only == (desc.name in READ_ONLY), desc.name
        if desc.type == ParameterType.PARAMETER_DOUBLE:
            assert len(desc.floating_point_range) == 1, desc.name
        if desc.type == ParameterType.PARAMETER_INTEGER:
            assert len(desc.integer_range) == 1, desc.name

    # Ctrl-C (SIGINT) shuts the node down cleanly; with the yaml's empty checkpoint it ran the shipped model
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert 'loaded STARK lite0 (' in output and os.path.basename(DEFAULT_CHECKPOINT) in output, output
    assert 'SYNTHETIC' not in output, output


def test_node_exits_with_error_on_a_bad_checkpoint(share_dir, tmp_path):
    from ament_index_python.packages import get_package_prefix
    exe = os.path.join(get_package_prefix('stark_ros'), 'lib', 'stark_ros', 'tracker_node')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT] + sys.path[1:]))
    missing = str(tmp_path / 'missing.pth.tar')
    proc = subprocess.run([exe, '--ros-args', '-p', 'checkpoint:=' + missing, '-p', 'device:=cpu',
                           '-r', '__node:=stark_tracker_badckpt_%d' % os.getpid()],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert 'missing.pth.tar' in proc.stdout + proc.stderr
