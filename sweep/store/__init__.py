"""Opening and reading study storages: storage URLs and the journal file, the schema
check, the fast readers (SQL for relational storages), Optuna's cache warmed, who owns
which running trial, and the results table. The only home of Optuna's private API and raw
SQL. Imports ``core`` only."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "ownership": ["Worker", "owner_alive"],
    "reading": ["BestCache", "FINISHED", "StudyReader"],
    "results": [
        "READ_KEYS",
        "TableCache",
        "columns",
        "display_cell",
        "rows_of",
        "table_rows",
        "write_table",
    ],
    "storage": [
        "STORAGE_ENV",
        "check_study_name",
        "default_storage_url",
        "load_existing_study",
        "open_storage",
        "reader_for",
        "storage_from",
        "study_dir",
        "writable_study_dir",
    ],
    "trials": ["handle", "record_on", "stored", "stored_again", "stored_by_number"],
    "warm": ["warm"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
