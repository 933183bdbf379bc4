"""Running a sweep: the driver (``sweep run``), preparation (the probe, the study), a
process's trial loop (``session``), retries, ``--jobs`` and Dask workers, ``sweep worker``,
samplers and pruners, ``--keep-checkpoints``. Imports ``train`` and ``integrations`` lazily
(inside the functions that train), and the layers below."""
