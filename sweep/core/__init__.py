"""The bottom layer: errors (and the cause line of an exception), ``Direction``, the
trial record (``TrialRecord``, ``StopReason``, ``State``, study attrs), the ``Plan`` every
worker runs, the options defined once (``options``: each field's flag and help), the
``Observer`` interface and the events observers receive (``observers``; the plain lines
are ``progress``), devices, signals, passwords kept out of output, atomic writes, lock
files, durations, a package's public names loaded lazily (``lazy``). Imports nothing of
sweep outside ``core``."""

from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "atomic": ["atomic_path", "write_text_atomic", "write_with"],
    "devices": [
        "DevicePlan",
        "GROWTH_ENV",
        "HIDDEN",
        "ParentGpus",
        "WorkerDevices",
        "current",
        "discover_gpus",
        "logical_cpus",
        "parse_gpus",
        "parse_memory",
        "plan_devices",
        "settle",
        "take",
    ],
    "direction": ["Direction"],
    "durations": ["format_duration", "parse_duration"],
    "errors": [
        "ConfigError",
        "DiskFullError",
        "FILE_NOTE",
        "FatalTrialError",
        "Interrupted",
        "MonitorMissingError",
        "SweepError",
        "TrialFailedError",
        "TrialPrunedError",
        "disk_full_cause",
        "disk_full_error",
        "disk_full_stops",
        "error_text",
        "is_failed_trial",
        "is_fatal",
    ],
    "interrupts": ["StopSignals", "process_owned", "relay_to", "sigterm_is_ctrl_c"],
    "locks": ["lock_if_free"],
    "observers": [
        "EpochEvent",
        "Observer",
        "Observers",
        "RunningTrial",
        "SweepEnd",
        "SweepEnded",
        "SweepStart",
        "TrialBuilt",
        "TrialEvent",
        "TrialStart",
    ],
    "options": [
        "Option",
        "PathLike",
        "RunArgs",
        "file_path",
        "flag",
        "number",
        "number_list",
        "number_or_list",
        "option",
        "options_of",
        "whole",
        "whole_list",
        "whole_or_list",
    ],
    "plan": ["MAX_THREADS", "Plan", "TrialOptions", "trial_seed"],
    "progress": ["PlainProgress", "describe_trial"],
    "record": [
        "CURVE",
        "State",
        "StopReason",
        "StudyAttr",
        "TrialRecord",
        "execution_facts",
        "execution_key",
        "from_trial",
        "read_study",
        "recorded",
        "started_facts",
        "write",
        "write_stored",
        "write_study",
    ],
    "redaction": ["hide_secrets", "redact", "redact_text"],
    "tfenv": ["import_tensorflow_quietly", "quiet_optuna"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
