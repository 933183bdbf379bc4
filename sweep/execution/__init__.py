"""Running a sweep: the driver (``sweep run``), preparation (the probe, the study), a
process's trial loop (``session``), retries, ``--jobs`` and Dask workers, ``sweep worker``,
samplers and pruners, ``--keep-checkpoints``. Imports ``train`` and ``integrations`` lazily
(inside the functions that train), and the layers below."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "driver": ["RunOptions", "load_run_space", "run_sweep"],
    "worker": ["join_sweep"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
