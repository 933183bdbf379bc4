"""The Python API: ``sweep.run``, ``sweep.load``, ``sweep.work`` (``entry``), ``Study``,
and the live and notebook displays."""
