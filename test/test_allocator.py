"""stark_ros.allocator: the glibc malloc settings the executables apply at start."""
import ctypes.util

from stark_ros.allocator import tune_allocator


def test_glibc_accepts_the_settings():
    # these machines run glibc (Debian): mallopt must accept both settings, again and again
    assert ctypes.util.find_library('c')
    assert tune_allocator() is True
    assert tune_allocator() is True

