"""The Python API: ``sweep.run``, ``sweep.load``, ``sweep.work`` (``entry``), ``Study``,
and the live and notebook displays."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "entry": ["load", "run", "run_options", "work"],
    "live": ["LiveProgress"],
    "study": ["Study"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
