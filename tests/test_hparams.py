"""``OptunaHyperParameters``: KerasTuner's ``hp`` API, every value asked of a real Optuna trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from keras_tuner.engine import hyperparameters as kt_hps
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweep.core.errors import ConfigError
from sweep.train.hparams import OptunaHyperParameters, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)


def new_study() -> optuna.Study:
    return optuna.create_study(storage=optuna.storages.InMemoryStorage())


def new_trial(enqueue: dict[str, Any] | None = None) -> optuna.Trial:
    study = new_study()
    if enqueue is not None:
        study.enqueue_trial(enqueue)
    return study.ask()


class CountingTrial:
    """A real ``optuna.Trial`` that also counts its ``suggest_*`` calls (a spy, not a mock)."""

    def __init__(self, trial: optuna.Trial) -> None:
        self._trial = trial
        self.suggested: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return attr

        def counted(param: str, *args: Any, **kwargs: Any) -> Any:
            self.suggested.append(param)
            return attr(param, *args, **kwargs)

        return counted


# ---------------------------------------------------------------------------------------------
# It is a KerasTuner HyperParameters


def test_is_a_keras_tuner_hyperparameters() -> None:
    hp = OptunaHyperParameters(new_trial())
    assert isinstance(hp, keras_tuner.HyperParameters)
    assert isinstance(hp, kt_hps.HyperParameters)


# ---------------------------------------------------------------------------------------------
# Each KerasTuner call maps onto the documented Optuna distribution


def kt_values(hp: Any) -> list[Any]:
    """KerasTuner's own list of the values a stepped hyperparameter can take."""
    return list(hp.values)


MAPPINGS: list[tuple[str, Callable[[Any], Any], BaseDistribution]] = [
    (
        "int-linear-step",
        lambda hp: hp.Int("a", 1, 9, step=2),
        IntDistribution(low=1, high=9, step=2, log=False),
    ),
    (
        "int-linear-default-step",
        lambda hp: hp.Int("a", 3, 12),
        IntDistribution(low=3, high=12, step=1, log=False),
    ),
    (
        "int-log",
        lambda hp: hp.Int("a", 2, 256, sampling="log"),
        IntDistribution(low=2, high=256, step=1, log=True),
    ),
    (
        "float-linear",
        lambda hp: hp.Float("a", 0.0, 0.5),
        FloatDistribution(low=0.0, high=0.5, step=None, log=False),
    ),
    (
        "float-linear-step",
        lambda hp: hp.Float("a", 0.0, 1.0, step=0.25),
        FloatDistribution(low=0.0, high=1.0, step=0.25, log=False),
    ),
    (
        "float-log",
        lambda hp: hp.Float("a", 1e-5, 1e-1, sampling="log"),
        FloatDistribution(low=1e-5, high=1e-1, step=None, log=True),
    ),
    (
        "int-log-step",
        lambda hp: hp.Int("a", 8, 64, step=2, sampling="log"),
        CategoricalDistribution(kt_values(kt_hps.Int("a", 8, 64, step=2, sampling="log"))),
    ),
    (
        "float-log-step",
        lambda hp: hp.Float("a", 1e-4, 1e-1, step=10, sampling="log"),
        CategoricalDistribution(kt_values(kt_hps.Float("a", 1e-4, 1e-1, step=10, sampling="log"))),
    ),
    (
        "int-reverse-log-step",
        lambda hp: hp.Int("a", 8, 64, step=2, sampling="reverse_log"),
        CategoricalDistribution(kt_values(kt_hps.Int("a", 8, 64, step=2, sampling="reverse_log"))),
    ),
    (
        "choice-str",
        lambda hp: hp.Choice("a", ["relu", "tanh", "gelu"]),
        CategoricalDistribution(["relu", "tanh", "gelu"]),
    ),
    (
        "choice-int",
        lambda hp: hp.Choice("a", [16, 32, 64]),
        CategoricalDistribution([16, 32, 64]),
    ),
    ("boolean", lambda hp: hp.Boolean("a"), CategoricalDistribution([False, True])),
    ("fixed", lambda hp: hp.Fixed("a", 42), CategoricalDistribution([42])),
    ("fixed-str", lambda hp: hp.Fixed("a", "adam"), CategoricalDistribution(["adam"])),
]


@pytest.mark.parametrize(
    ("call", "expected"), [(c, e) for _, c, e in MAPPINGS], ids=[i for i, _, _ in MAPPINGS]
)
def test_each_call_maps_to_the_documented_distribution(
    call: Callable[[Any], Any], expected: BaseDistribution
) -> None:
    trial = new_trial()
    hp = OptunaHyperParameters(trial)
    value = call(hp)
    assert trial.distributions == {"a": expected}
    assert value == trial.params["a"]
    assert value == hp.values["a"]
    assert hp.get("a") == value


def test_log_step_choices_are_keras_tuners_values_with_keras_tuners_types() -> None:
    """``Int(step, sampling="log")``: KerasTuner's values, as ints (KerasTuner lists floats)."""
    trial = new_trial()
    hp = OptunaHyperParameters(trial)
    value = hp.Int("batch", 8, 64, step=2, sampling="log")
    lr = hp.Float("lr", 1e-4, 1e-1, step=10, sampling="log")
    batch_dist = trial.distributions["batch"]
    assert isinstance(batch_dist, CategoricalDistribution)
    assert list(batch_dist.choices) == [8, 16, 32, 64]
    assert all(type(c) is int for c in batch_dist.choices)
    assert type(value) is int
    assert value in (8, 16, 32, 64)
    lr_dist = trial.distributions["lr"]
    assert isinstance(lr_dist, CategoricalDistribution)
    assert list(lr_dist.choices) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert type(lr) is float


def test_suggest_maps_a_bare_keras_tuner_hyperparameter() -> None:
    trial = new_trial()
    value = suggest(trial, kt_hps.Int("n", 2, 10, step=4))
    assert trial.distributions == {"n": IntDistribution(low=2, high=10, step=4)}
    assert value in (2, 6, 10)
    assert trial.params == {"n": value}


def test_int_is_an_int_under_the_grid_sampler_the_sweep_builds() -> None:
    from sweep.execution.samplers import grid_space, make_sampler

    space = keras_tuner.HyperParameters()
    space.Int("units", 4, 16, step=2, sampling="log")
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=make_sampler("grid", seed=0, grid=grid_space(space.space)),
    )
    values = [OptunaHyperParameters(study.ask()).Int("units", 4, 16, step=2, sampling="log")]
    assert values[0] in (4, 8, 16)
    assert type(values[0]) is int


# ---------------------------------------------------------------------------------------------
# Values come from Optuna, not from KerasTuner's defaults


ENQUEUED: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("int-step", lambda hp: hp.Int("a", 1, 9, step=2), 7),
    ("int-log", lambda hp: hp.Int("a", 1, 1000, sampling="log"), 500),
    ("float-log", lambda hp: hp.Float("a", 1e-4, 1e-1, sampling="log"), 0.05),
    ("int-log-step", lambda hp: hp.Int("a", 8, 64, step=2, sampling="log"), 32),
    ("choice", lambda hp: hp.Choice("a", ["x", "y", "z"]), "z"),
    ("boolean", lambda hp: hp.Boolean("a"), True),
]


@pytest.mark.parametrize(
    ("call", "enqueued"), [(c, v) for _, c, v in ENQUEUED], ids=[i for i, _, _ in ENQUEUED]
)
def test_values_come_from_the_optuna_trial(call: Callable[[Any], Any], enqueued: Any) -> None:
    default = call(keras_tuner.HyperParameters())
    assert default != enqueued  # else this test could not tell the two apart
    trial = new_trial({"a": enqueued})
    hp = OptunaHyperParameters(trial)
    assert call(hp) == enqueued
    assert hp.values == {"a": enqueued}
    assert trial.params == {"a": enqueued}


def test_int_from_enqueued_value_not_keras_tuner_default() -> None:
    trial = new_trial({"a": 7})
    hp = OptunaHyperParameters(trial)
    assert keras_tuner.HyperParameters().Int("a", 1, 9, step=2) == 1
    assert hp.Int("a", 1, 9, step=2) == 7


def test_a_study_samples_different_values_across_trials() -> None:
    study = new_study()
    seen = {OptunaHyperParameters(study.ask()).Int("a", 0, 1000) for _ in range(8)}
    assert len(seen) > 1  # KerasTuner's default would always be 0


# ---------------------------------------------------------------------------------------------
# Conditional scopes


def build_conditional(hp: Any) -> tuple[Any, Any]:
    kind = hp.Choice("kind", ["mlp", "cnn"])
    assert kind in ("mlp", "cnn")
    with hp.conditional_scope("kind", ["cnn"]):
        filters = hp.Int("filters", 4, 16, step=4)
    with hp.conditional_scope("kind", ["mlp"]):
        units = hp.Int("units", 4, 16, step=4)
    return filters, units


def test_conditional_scope_only_the_active_branch_is_suggested() -> None:
    trial = new_trial({"kind": "mlp", "units": 12, "filters": 8})
    hp = OptunaHyperParameters(trial)
    filters, units = build_conditional(hp)
    assert filters is None
    assert units == 12
    assert "filters" not in trial.params
    assert "filters" not in trial.distributions
    assert trial.params == {"kind": "mlp", "units": 12}
    assert hp.values == {"kind": "mlp", "units": 12}
    assert hp.is_active("units")
    assert not hp.is_active("filters")
    assert [h.name for h in hp.space] == ["kind", "filters", "units"]


def test_conditional_scope_other_branch() -> None:
    trial = new_trial({"kind": "cnn", "filters": 8})
    hp = OptunaHyperParameters(trial)
    filters, units = build_conditional(hp)
    assert (filters, units) == (8, None)
    assert trial.params == {"kind": "cnn", "filters": 8}


def test_get_of_an_inactive_hyperparameter_raises_as_in_keras_tuner() -> None:
    hp = OptunaHyperParameters(new_trial({"kind": "mlp"}))
    build_conditional(hp)
    with pytest.raises(ValueError, match="inactive"):
        hp.get("filters")
    with pytest.raises(KeyError, match="does not exist"):
        hp.get("nope")
    assert "filters" not in hp
    assert "units" in hp

    plain = keras_tuner.HyperParameters()  # the same behaviour, from KerasTuner itself
    plain.Choice("kind", ["mlp", "cnn"])
    with plain.conditional_scope("kind", ["cnn"]):
        plain.Int("filters", 4, 16, step=4)
    with pytest.raises(ValueError, match="inactive"):
        plain.get("filters")


def test_parent_name_keyword_is_a_conditional_scope() -> None:
    trial = new_trial({"kind": "mlp"})
    hp = OptunaHyperParameters(trial)
    hp.Choice("kind", ["mlp", "cnn"])
    assert hp.Int("filters", 4, 16, parent_name="kind", parent_values=["cnn"]) is None
    assert hp.Int("units", 4, 16, parent_name="kind", parent_values=["mlp"]) is not None
    assert set(trial.params) == {"kind", "units"}


# ---------------------------------------------------------------------------------------------
# Name scopes


def test_name_scope_prefixes_the_name_as_keras_tuner_does() -> None:
    def build(hp: Any) -> None:
        with hp.name_scope("block1"):
            hp.Int("units", 4, 16)
            with hp.name_scope("inner"):
                hp.Boolean("bias")
        hp.Int("units", 4, 16)

    plain = keras_tuner.HyperParameters()
    build(plain)
    expected = {"block1/units", "block1/inner/bias", "units"}
    assert set(plain.values) == expected  # KerasTuner's own naming

    trial = new_trial()
    hp = OptunaHyperParameters(trial)
    build(hp)
    assert set(trial.params) == expected
    assert set(hp.values) == expected
    with hp.name_scope("block1"):
        assert hp.get("units") == trial.params["block1/units"]


def test_conditional_scope_inside_a_name_scope() -> None:
    trial = new_trial({"enc/kind": "cnn"})
    hp = OptunaHyperParameters(trial)
    with hp.name_scope("enc"):
        hp.Choice("kind", ["mlp", "cnn"])
        with hp.conditional_scope("kind", ["cnn"]):
            filters = hp.Int("filters", 4, 16)
        with hp.conditional_scope("kind", ["mlp"]):
            units = hp.Int("units", 4, 16)
    assert units is None
    assert filters is not None
    assert set(trial.params) == {"enc/kind", "enc/filters"}


# ---------------------------------------------------------------------------------------------
# Asking twice


def test_the_same_hyperparameter_twice_returns_one_value_and_suggests_once() -> None:
    spy = CountingTrial(new_trial())
    hp = OptunaHyperParameters(spy)
    first = hp.Float("lr", 1e-4, 1e-1, sampling="log")
    second = hp.Float("lr", 1e-4, 1e-1, sampling="log")
    units = [hp.Int("units", 4, 64) for _ in range(3)]
    assert first == second
    assert len(set(units)) == 1
    assert spy.suggested == ["lr", "units"]
    assert hp.get("lr") == first
    assert len(hp.space) == 2


# ---------------------------------------------------------------------------------------------
# Unsupported: reverse_log without a step


@pytest.mark.parametrize(
    "call",
    [
        lambda hp: hp.Float("lr", 1e-4, 1e-1, sampling="reverse_log"),
        lambda hp: hp.Int("lr", 1, 100, sampling="reverse_log"),
    ],
    ids=["float", "int"],
)
def test_reverse_log_without_step_is_a_config_error(call: Callable[[Any], Any]) -> None:
    trial = new_trial()
    hp = OptunaHyperParameters(trial)
    with pytest.raises(ConfigError) as info:
        call(hp)
    message = str(info.value)
    assert "'lr'" in message
    assert "reverse_log" in message
    assert "use sampling='log'" in message
    assert "step" in message
    assert "\n" not in message
    assert info.value.exit_code == 2
    assert trial.params == {}


def test_suggest_rejects_an_unknown_hyperparameter_type() -> None:
    trial = new_trial()
    with pytest.raises(ConfigError, match=r"'odd'.*Int, Float, Choice, Boolean or Fixed"):
        suggest(trial, kt_hps.HyperParameter(name="odd", default=1))


# ---------------------------------------------------------------------------------------------
# A build function as the KerasTuner guide writes one


def guide_build_model(hp: Any) -> keras.Model:
    inputs = keras.Input(shape=(8,))
    x = inputs
    model_type = hp.Choice("model_type", ["mlp", "cnn"])
    with hp.conditional_scope("model_type", ["mlp"]):
        if model_type == "mlp":
            for i in range(hp.Int("num_layers", 1, 3)):
                x = keras.layers.Dense(
                    units=hp.Int(f"units_{i}", min_value=4, max_value=16, step=4),
                    activation=hp.Choice("activation", ["relu", "tanh"]),
                )(x)
    with hp.conditional_scope("model_type", ["cnn"]):
        if model_type == "cnn":
            x = keras.layers.Reshape((8, 1))(x)
            x = keras.layers.Conv1D(hp.Int("filters", 2, 8, step=2), 3, activation="relu")(x)
            x = keras.layers.GlobalAveragePooling1D()(x)
    if hp.Boolean("dropout"):
        x = keras.layers.Dropout(rate=0.25)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.mark.parametrize(
    ("enqueued", "active"),
    [
        (
            {"model_type": "mlp", "num_layers": 2, "units_0": 8, "units_1": 12, "dropout": True},
            {"model_type", "num_layers", "units_0", "units_1", "activation", "dropout", "lr"},
        ),
        (
            {"model_type": "cnn", "filters": 4, "dropout": False},
            {"model_type", "filters", "dropout", "lr"},
        ),
    ],
    ids=["mlp", "cnn"],
)
def test_a_keras_tuner_guide_build_function_builds_a_compiled_model(
    enqueued: dict[str, Any], active: set[str]
) -> None:
    keras.backend.clear_session()
    trial = new_trial(enqueued)
    hp = OptunaHyperParameters(trial)
    model = guide_build_model(hp)
    assert isinstance(model, keras.Model)
    assert model.compiled
    assert set(trial.params) == active
    assert trial.params == hp.values
    for name, value in enqueued.items():
        assert trial.params[name] == value
    assert model.optimizer.learning_rate.numpy() == pytest.approx(trial.params["lr"])

    layers = [type(layer).__name__ for layer in model.layers]
    assert ("Dropout" in layers) is trial.params["dropout"]
    if trial.params["model_type"] == "mlp":
        assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [
            8,
            12,
            3,
        ]
        assert "Conv1D" not in layers
    else:
        assert "Conv1D" in layers
        assert next(x for x in model.layers if type(x).__name__ == "Conv1D").filters == 4

    x = np.zeros((2, 8), dtype="float32")
    assert model.predict(x, verbose=0).shape == (2, 3)


def test_guide_build_function_over_a_study_records_only_active_hyperparameters() -> None:
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for _ in range(4):
        keras.backend.clear_session()
        trial = study.ask()
        hp = OptunaHyperParameters(trial)
        guide_build_model(hp)
        inactive = {h.name for h in hp.space if not hp.is_active(h)}
        assert set(trial.params) == set(hp.values)
        assert not inactive & set(trial.params)
        study.tell(trial, 0.0)
    assert len(study.trials) == 4
