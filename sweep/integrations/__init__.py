"""Trackers: TensorBoard and MLflow as observers of a sweep (``trackers`` makes the ones
the settings ask for, lazily). Imports ``space``, ``store`` and ``core``."""
