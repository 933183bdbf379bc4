"""A search space and its data: the space file or functions (``files``), HyperModels and
KerasTuner Tuners, ``load_data``'s parts and input kinds, the bundled datasets, the space's
fingerprint, the arrays shared with ``--jobs`` workers, and a plan's space and data loaded in
every process. Imports ``core`` only (and KerasTuner only once a space file did)."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "data": ["Data", "cast_as_keras_fit", "data_fingerprint", "fingerprint", "head", "length"],
    "files": [
        "COMMAND_LINE",
        "Functions",
        "SETTING_NAMES",
        "SearchSpace",
        "Settings",
        "load_space",
        "resolve_space_path",
        "space_from_functions",
        "validate_settings",
    ],
    "fingerprint": [
        "RerunCheck",
        "ResumeRefused",
        "settings_conflict",
        "space_fingerprint",
        "started_with",
    ],
    "hypermodel": ["fit_direction", "hypermodel_fit", "objective_from_fit"],
    "inputs": ["InputKind", "call_fit_options"],
    "loading": ["load_checked_data", "load_space_for", "pickle_functions", "space_label"],
    "shared": ["SharedCopy", "read_shared", "remove_stale", "write_shared"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
