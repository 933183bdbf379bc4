"""The bottom layer: errors (and the cause line of an exception), ``Direction``, the
trial record (``TrialRecord``, ``StopReason``, ``State``, study attrs), the ``Plan`` every
worker runs, the options defined once (``options``: each field's flag and help), the
events observers receive (``progress``) and the ``Tracker`` interface, devices, signals,
passwords kept out of output, atomic writes, durations. Imports nothing of sweep outside
``core``."""
