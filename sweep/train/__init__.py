from sweep.core.lazy import lazy_getattr, public_names

# The names the layers above use, by module (tests/test_layout.py holds them to it)
_PUBLIC = {
    "causes": ["name_bad_file"],
    "evaluate": ["best_on_test", "test_scores", "validation_score"],
    "executions": ["train_trial"],
    "feeds": ["evaluate_kwargs"],
    "gpu": ["configure_process"],
    "hparams": ["listed_values"],
    "probe": ["probe_space"],
    "trial": ["TrialJob"],
}
__all__ = public_names(_PUBLIC)
__getattr__ = lazy_getattr(__name__, _PUBLIC)
