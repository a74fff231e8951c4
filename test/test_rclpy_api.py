"""Humble API check: every rclpy API the project's code uses exists in Humble's rclpy (3.3), or is used only
through a detected fallback in ``stark_ros/ros/compat.py``.

Humble has no wheels here, so it cannot run. What is checked, and how:

1. The project's calls are collected from the source (``ast``), not by hand: every ``from rclpy... import`` name,
   every ``rclpy.<name>`` chain, and every attribute accessed in a module that uses rclpy or rcl_interfaces whose
   name is a member of one of the rclpy classes the code works with (Node, LifecycleNode, Publisher, Subscription,
   Service, Client, Executor, Future, Clock, Time, Parameter, the logger, Context) in the rclpy installed here
   (Kilted or Jazzy); instance attributes set in ``__init__`` count as members.
2. Each collected ``Class.member`` / ``rclpy.module.name`` must be in :data:`HUMBLE_RCLPY` (the APIs of Humble's
   rclpy the project uses, with the distribution each appeared in), or in :data:`FALLBACKS` and used in
   ``compat.py`` only.
3. No subscription outside ``compat.py`` passes a two-argument callback (Humble calls ``callback(msg)`` only).
4. The README's rclpy table names every collected call.

A new rclpy call therefore fails this test until someone has checked it against Humble's rclpy and added it here
and to the README (with a fallback in compat.py if Humble lacks it).
"""
import ast
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

#: rclpy APIs used by stark_ros that Humble's rclpy (3.3) has -> distribution they appeared in.
HUMBLE_RCLPY = {
    'rclpy.init': 'Dashing', 'rclpy.ok': 'Dashing', 'rclpy.try_shutdown': 'Galactic', 'rclpy.create_node': 'Dashing',
    'rclpy.Context': 'Dashing', 'rclpy.exceptions.ParameterException': 'Foxy', 'rclpy.logging.get_logger': 'Dashing',
    'rclpy.node.Node': 'Dashing', 'rclpy.executors': 'Dashing', 'rclpy.subscription': 'Dashing', 'rclpy.executors.SingleThreadedExecutor': 'Dashing',
    'rclpy.executors.ExternalShutdownException': 'Humble', 'rclpy.callback_groups.MutuallyExclusiveCallbackGroup':
    'Dashing', 'rclpy.qos.QoSProfile': 'Dashing', 'rclpy.qos.qos_profile_sensor_data': 'Dashing',
    'rclpy.task.Future': 'Dashing', 'rclpy.parameter.Parameter': 'Dashing', 'rclpy.subscription.Subscription': 'Dashing',
    'Node.declare_parameter': 'Dashing', 'Node.get_parameter': 'Dashing', 'Node.add_on_set_parameters_callback':
    'Foxy', 'Node.create_publisher': 'Dashing', 'Node.create_subscription': 'Dashing', 'Node.create_service':
    'Dashing', 'Node.create_client': 'Dashing', 'Node.create_timer': 'Dashing', 'Node.destroy_timer': 'Dashing',
    'Node.destroy_node': 'Dashing', 'Node.get_clock': 'Dashing', 'Node.get_name': 'Dashing', 'Node.get_namespace': 'Dashing', 'Node.get_logger': 'Dashing', 'Node.executor':
    'Dashing', 'Publisher.publish': 'Dashing', 'Publisher.topic_name': 'Galactic',
    'Publisher.get_subscription_count': 'Foxy', 'Node.resolve_topic_name': 'Galactic', 'Subscription.topic_name': 'Galactic',
    'Subscription.get_publisher_count': 'Humble', 'Service.srv_name': 'Dashing', 'Client.call': 'Dashing',
    'Client.call_async': 'Dashing', 'Client.service_is_ready': 'Dashing',
    'Client.wait_for_service': 'Dashing', 'Executor.add_node': 'Dashing', 'Executor.remove_node': 'Dashing',
    'Executor.spin': 'Dashing', 'Executor.shutdown': 'Dashing', 'Future.add_done_callback': 'Dashing',
    'Future.cancelled': 'Dashing', 'Future.done': 'Dashing', 'Future.set_result': 'Dashing', 'Clock.now': 'Dashing',
    'Time.nanoseconds': 'Dashing', 'Time.to_msg': 'Dashing', 'Parameter.name': 'Dashing',
    'Parameter.value': 'Dashing', 'RcutilsLogger.info': 'Dashing', 'RcutilsLogger.warning': 'Foxy',
    'RcutilsLogger.error': 'Dashing', 'RcutilsLogger.fatal': 'Dashing', 'RcutilsLogger.log': 'Dashing',
    'Context.init': 'Dashing', 'Context.shutdown': 'Dashing', 'Context.try_shutdown': 'Galactic',
    'Node.destroy_subscription': 'Dashing', 'Node.destroy_service': 'Dashing', 'Node.destroy_publisher': 'Dashing',
    # rclpy.lifecycle appeared in rclpy 3.2 (Humble): "Implement managed nodes (#865)"
    'rclpy.lifecycle.LifecycleNode': 'Humble', 'rclpy.lifecycle.TransitionCallbackReturn': 'Humble',
    'LifecycleNode.create_lifecycle_publisher': 'Humble', 'LifecycleNode.destroy_lifecycle_publisher': 'Humble',
    'LifecycleNode.on_activate': 'Humble', 'LifecycleNode.on_deactivate': 'Humble',
}
#: Iron-and-later APIs, used only behind a feature check in stark_ros/ros/compat.py -> distribution.
FALLBACKS = {'Node.add_post_set_parameters_callback': 'Iron', 'Subscription.CallbackType': 'Iron'}


def _classes():
    import rclpy.client
    import rclpy.clock
    import rclpy.context
    import rclpy.executors
    import rclpy.impl.rcutils_logger
    import rclpy.lifecycle
    import rclpy.node
    import rclpy.parameter
    import rclpy.publisher
    import rclpy.service
    import rclpy.subscription
    import rclpy.task
    import rclpy.time
    return {'Node': rclpy.node.Node, 'Publisher': rclpy.publisher.Publisher,
            'Subscription': rclpy.subscription.Subscription, 'Service': rclpy.service.Service,
            'Client': rclpy.client.Client, 'Executor': rclpy.executors.Executor, 'Future': rclpy.task.Future,
            'Clock': rclpy.clock.Clock, 'Time': rclpy.time.Time, 'Parameter': rclpy.parameter.Parameter,
            'RcutilsLogger': rclpy.impl.rcutils_logger.RcutilsLogger, 'Context': rclpy.context.Context,
            'LifecycleNode': rclpy.lifecycle.LifecycleNode}


def _members(cls):
    """Public class attributes, and the ``self.<name> = ...`` instance attributes of ``__init__``."""
    import inspect
    import textwrap
    names = {n for n in dir(cls) if not n.startswith('_')}
    try:
        init = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    except (OSError, TypeError):
        return names
    return names | {n.attr for n in ast.walk(init) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                    and isinstance(n.value, ast.Name) and n.value.id == 'self' and not n.attr.startswith('_')}


def _ros_modules():
    for path in sorted((REPO / 'stark_ros').rglob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
        modules = {n.module or '' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if any(m.split('.')[0] in ('rclpy', 'rcl_interfaces') for m in modules):
            yield path, tree


def _chain(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return None


@pytest.fixture(scope='module')
def used():
    """{api name: {file names}} of the rclpy APIs the project's code uses."""
    return collect_used()


def collect_used():
    """See :func:`used`."""
    members = {name: _members(cls) for name, cls in _classes().items()}
    out = {}
    for path, tree in _ros_modules():
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or '').startswith('rclpy'):
                for alias in n.names:
                    out.setdefault('%s.%s' % (n.module, alias.name), set()).add(path.name)
            elif isinstance(n, ast.Attribute):
                chain = _chain(n)
                if chain and chain.startswith('rclpy.') and isinstance(getattr(n, 'ctx', None), ast.Load):
                    out.setdefault(chain, set()).add(path.name)
                    continue
                candidates = ['%s.%s' % (c, n.attr) for c, names in members.items() if n.attr in names]
                if candidates:
                    out.setdefault(tuple(sorted(candidates)), set()).add(path.name)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == 'hasattr' \
                    and len(n.args) == 2 and isinstance(n.args[1], ast.Constant):
                owner = _chain(n.args[0]) or ''
                out.setdefault('%s.%s' % (owner.split('.')[-1], n.args[1].value), set()).add(path.name)
    # chains like rclpy.logging.get_logger also appear as their prefixes (rclpy.logging): keep the longest
    chains = [k for k in out if isinstance(k, str) and k.startswith('rclpy.')]
    for k in chains:
        if any(other != k and other.startswith(k + '.') for other in chains) and k not in HUMBLE_RCLPY:
            del out[k]
    return out


def test_every_rclpy_call_exists_in_humble_or_has_a_fallback(used):
    missing, misplaced = [], []
    for key, files in used.items():
        options = [key] if isinstance(key, str) else list(key)
        if any(o in HUMBLE_RCLPY for o in options):
            continue
        fallback = [o for o in options if o in FALLBACKS]
        if fallback:
            if files != {'compat.py'}:
                misplaced.append((fallback[0], sorted(files)))
            continue
        missing.append((key, sorted(files)))
    assert not missing, 'rclpy APIs not checked against Humble: %s' % missing
    assert not misplaced, 'Iron+ APIs used outside stark_ros/ros/compat.py: %s' % misplaced
    assert any(('Node.add_post_set_parameters_callback' in (k if isinstance(k, tuple) else (k,))) for k in used)


def test_no_two_argument_subscription_callbacks_outside_compat():
    """Humble's executor calls ``callback(msg)``; a callback needing MessageInfo goes through compat."""
    bad = []
    for path, tree in _ros_modules():
        if path.name == 'compat.py':
            continue
        methods = {f.name: f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == 'create_subscription' and len(call.args) >= 3):
                continue
            callback = call.args[2]
            if isinstance(callback, ast.Lambda):
                count = len(callback.args.args)
            elif isinstance(callback, ast.Attribute) and callback.attr in methods:
                count = len(methods[callback.attr].args.args) - 1       # self
            elif isinstance(callback, ast.Attribute):
                count = 1                                                # e.g. queue.put
            else:
                count = len(methods[callback.id].args.args) if callback.id in methods else 1
            if count != 1:
                bad.append('%s:%d' % (path.name, call.lineno))
    assert not bad, bad


def test_readme_lists_every_rclpy_call(used):
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    table = readme[readme.index('| rclpy API |'):]
    table = table[:table.index('\n\n')]
    listed = set()
    for line in table.splitlines()[2:]:
        listed |= {name for name in re.findall(r'`([^`]+)`', line.split('|')[1]) if '.' in name}
    unlisted = []
    for key in used:
        options = [key] if isinstance(key, str) else list(key)
        known = [o for o in options if o in HUMBLE_RCLPY or o in FALLBACKS]
        if known and not any(o in listed for o in known):
            unlisted.append(known[0])
    assert not unlisted, 'add to the README rclpy table: %s' % sorted(unlisted)
    for name in listed:
        assert name in HUMBLE_RCLPY or name in FALLBACKS, name
