"""What is read from a finished or running study: ``sweep status``, ``sweep compare`` and
Keras' stopping rule replayed, the report (curves, importances), the export (and where it
goes). Imports the layers below; ``train`` lazily."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "compare": [
        "DEFAULT_MIN_DELTA",
        "DEFAULT_PATIENCE",
        "compare",
        "recorded_settings",
        "to_csv",
        "write_outputs",
    ],
    "export": ["export"],
    "report": ["write_report"],
    "status": ["Status", "status"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
