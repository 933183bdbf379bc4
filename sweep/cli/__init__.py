"""The ``sweep`` command: its arguments, the commands (``main``), how its process exits.
The only layer that exits the process."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "main": ["main_entry"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
