"""The trackers a sweep's settings ask for (``--tensorboard``, ``--mlflow``), checked
before anything is created and made by name, lazily: only a sweep that trains with one
imports TensorBoard or MLflow. They are observers (``sweep.core.observers``): this
process's trackers watch its trials (``trial_trackers``); the sweep's own watch the sweep
as a whole from the process that prepared it (``sweep_trackers``: MLflow's study run).

No TensorFlow and no MLflow here at module level.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sweep.core.errors import ConfigError
from sweep.core.observers import Observer
from sweep.core.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Callable

    import optuna

    from sweep.space.files import Settings

TENSORBOARD_INSTALL = "pip install -e '.[tensorboard]'"


MLFLOW_INSTALL = "pip install -e '.[mlflow]'"


URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own: --mlflow without a URI (mlflow=True) reads it


def check_installed(*, tensorboard: bool, mlflow: str | bool | None) -> None:
    """A missing extra is a configuration error, found before any trial runs."""
    import importlib.util

    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "--tensorboard: expected the tensorboard package, found it not installed; "
            f"install it with {TENSORBOARD_INSTALL}"
        )
    if mlflow not in (None, False) and importlib.util.find_spec("mlflow") is None:
        raise ConfigError(
            f"--mlflow: expected the mlflow package, found it not installed; "
            f"install it with {MLFLOW_INSTALL}"
        )


def check_trackers(settings: Settings, folder: Path) -> None:
    """The trackers the settings ask for: installed, and their destinations usable (the
    TensorBoard folder under the study's ``folder``), before anything is created."""
    check_installed(tensorboard=settings.tensorboard, mlflow=settings.mlflow)
    tensorboard = folder / "tensorboard" if settings.tensorboard else None
    check_destinations(tensorboard=tensorboard, mlflow=settings.mlflow)


def trial_trackers(
    settings: Settings,
    *,
    results: Path,
    study: optuna.Study,
    warn: Callable[[str], None],
) -> list[Observer]:
    """The trackers of this process's trials (imports TensorBoard/MLflow only then)."""
    found: list[Observer] = []
    if settings.tensorboard:
        from sweep.integrations.tensorboard import TensorBoardTracker

        found.append(TensorBoardTracker(results / "tensorboard"))
    uri = tracking_uri(settings.mlflow)
    if uri is not None:
        from sweep.integrations.mlflow_tracking import MlflowTracker

        found.append(
            MlflowTracker(uri, study=study, artifacts=settings.mlflow_artifacts, warn=warn)
        )
    return found


def sweep_trackers(
    settings: Settings, *, study: optuna.Study, warn: Callable[[str], None]
) -> list[Observer]:
    """The trackers of the sweep as a whole, for the process that prepares it: MLflow's
    study run, started before any worker and finished once the target is reached."""
    uri = tracking_uri(settings.mlflow)
    if uri is None:
        return []
    from sweep.integrations.mlflow_tracking import MlflowTracker

    return [MlflowTracker(uri, study=study, warn=warn)]


def tracking_uri(setting: str | bool | None) -> str | None:
    """The MLflow tracking URI a ``mlflow`` setting names: a URI as given; ``True``
    (``--mlflow`` alone) the one in ``MLFLOW_TRACKING_URI``, read in each process that
    logs (so a password there is never stored or passed on); None or False: no MLflow."""
    if setting is None or setting is False:
        return None
    if setting is True:
        uri = os.environ.get(URI_ENV, "").strip()
        if not uri:
            raise ConfigError(
                f"--mlflow: expected a tracking URI after it or in {URI_ENV}, found neither; "
                f"pass --mlflow URI or set {URI_ENV}"
            )
        return uri
    return setting


def check_destinations(*, tensorboard: Path | None, mlflow: str | bool | None) -> None:
    """Trackers' destinations, before anything is created: a TensorBoard folder that can
    be written, an MLflow URI of a known scheme whose local store can be made. A server
    that is down is no configuration error (each trial then warns, and goes on)."""
    if tensorboard is not None:
        _check_folder("--tensorboard", tensorboard, create=True)
    uri = tracking_uri(mlflow)
    if uri is not None:
        _check_mlflow(uri)


def _check_folder(what: str, folder: Path, *, create: bool) -> None:
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sweep-check-"):
            pass
    except OSError as exc:
        why = f"that no file can be created there ({exc.strerror})"
        if not folder.exists():
            why = "no such folder"
        elif not folder.is_dir():
            why = "a file"
        raise ConfigError(
            f"{what}: expected a writable folder {folder}, found {why}; "
            "fix the path or its permissions"
        ) from None


def _check_mlflow(uri: str) -> None:
    from mlflow.tracking._tracking_service import utils

    registry: Any = utils._tracking_store_registry  # MLflow's schemes, plugins included
    shown = redact(uri)
    scheme = urlsplit(uri).scheme
    try:
        registry.get_store_builder(uri)  # the scheme only: opens nothing
    except Exception:
        raise ConfigError(
            f"--mlflow {shown}: expected an MLflow tracking URI (http://HOST:PORT, "
            f"https://..., sqlite:///PATH, file:///PATH, databricks), got the scheme "
            f"{scheme!r}; fix the URI"
        ) from None
    if scheme in ("http", "https") and not urlsplit(uri).hostname:
        raise ConfigError(f"--mlflow {shown}: expected a server's host name, found none")
    if scheme == "sqlite":
        path = uri.removeprefix("sqlite:///")
        if path and path != ":memory:" and not uri.startswith("sqlite:///:memory:"):
            _check_folder(f"--mlflow {shown}", Path(path).parent, create=False)
    elif scheme in ("", "file"):
        root = Path(urlsplit(uri).path if scheme else uri)
        if root.exists() and not root.is_dir():
            raise ConfigError(
                f"--mlflow {shown}: expected a tracking URI or an MLflow store's folder, found "
                "a file; pass a URI (--mlflow alone takes MLFLOW_TRACKING_URI)"
            )
        _check_folder(f"--mlflow {shown}", root if root.is_dir() else root.parent, create=False)
