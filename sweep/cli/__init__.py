"""The ``sweep`` command: its arguments, the commands (``main``), how its process exits.
The only layer that exits the process."""
