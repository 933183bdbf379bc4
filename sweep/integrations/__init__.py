"""Trackers: TensorBoard and MLflow as observers of a sweep (``trackers`` makes the ones
the settings ask for, lazily). Imports ``space``, ``store`` and ``core``."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "trackers": ["check_trackers", "sweep_trackers", "trial_trackers"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
