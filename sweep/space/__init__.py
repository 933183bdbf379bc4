"""A search space and its data: the space file or functions (``files``), HyperModels and
KerasTuner Tuners, ``load_data``'s parts and input kinds, the bundled datasets, the space's
fingerprint, the arrays shared with ``--jobs`` workers, and a plan's space and data loaded in
every process. Imports ``core`` only (and KerasTuner only once a space file did)."""
