"""The bottom layer: errors (and the cause line of an exception), ``Direction``, the
trial record (``TrialRecord``, ``StopReason``, ``State``, study attrs), the ``Plan`` every
worker runs, the options defined once (``options``: each field's flag and help), the
``Observer`` interface and the events observers receive (``observers``; the plain lines
are ``progress``), devices, signals, passwords kept out of output, atomic writes,
durations. Imports nothing of sweep outside ``core``."""
