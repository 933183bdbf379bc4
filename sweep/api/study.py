"""``Study``: one sweep's results from Python, finished or still running.

Everything here reads the study storage (the one source of truth) when asked; only
``best_model`` and ``export`` import TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.errors import ConfigError
from sweep.core.record import StudyAttr, TrialRecord, from_trial, read_study
from sweep.store.trials import stored_by_number

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from sweep.space.files import SearchSpace
    from sweep.views.status import Status


class Study:
    """A sweep's study: ``sweep.run(...)`` returns one, ``sweep.load(name)`` opens one."""

    def __init__(
        self,
        name: str,
        *,
        results: Path = Path("results"),
        storage: str | None = None,
        space: SearchSpace | None = None,
    ) -> None:
        from sweep.store.storage import load_existing_study, reader_for, study_dir

        self.name = name
        self.results = Path(results)
        self.folder = study_dir(self.results, name)
        self.storage = storage
        self._space = space  # a function space's functions, for export
        self._optuna = load_existing_study(name, results_dir=self.results, storage=storage)
        self._reader = reader_for(self._optuna)

    def __repr__(self) -> str:
        return f"<sweep.Study {self.name!r} in {self.folder}/>"

    @property
    def optuna_study(self) -> optuna.Study:
        """The underlying ``optuna.Study``."""
        return self._optuna

    def _rows(self) -> list[dict[str, Any]]:
        from sweep.store.results import table_rows

        return table_rows(self._reader)

    def table(self) -> pd.DataFrame:
        """The results table as trials.csv has it: the same columns and order, best first."""
        import pandas as pd

        from sweep.store.results import columns

        rows = self._rows()
        return pd.DataFrame(rows, columns=columns(rows))

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial's record, by trial number."""
        return [from_trial(t) for t in self._reader.trials()]

    @property
    def best(self) -> TrialRecord:
        """The best complete trial's record (the table's first complete row)."""
        complete = [r for r in self._rows() if r["state"] == "complete"]
        if not complete:
            raise ConfigError(
                f"study {self.name!r}: expected a complete trial, found none; run the sweep first"
            )
        return self._trial(int(complete[0]["trial"]))

    def _trial(self, number: int) -> TrialRecord:
        total = self._reader.state_counts().total()
        if 0 <= number < total:
            return from_trial(stored_by_number(self._optuna, number))
        raise ConfigError(
            f"study {self.name!r}: expected a trial number from 0 to {total - 1}, got {number}"
        )

    def _artifacts(self) -> Path:
        text = read_study(self._optuna, StudyAttr.PLAN)
        return Path(json.loads(text)["artifacts"]) if text else self.folder

    def history(self, trial: int) -> pd.DataFrame:
        """Every epoch's logs of one trial (its ``trials/<n>/history.csv``)."""
        import pandas as pd

        self._trial(trial)
        path = self._artifacts() / "trials" / str(trial) / "history.csv"
        if not path.is_file():
            raise ConfigError(
                f"trial {trial}: expected its history at {path}, found no such file "
                "(it has not finished an epoch yet)"
            )
        return pd.read_csv(path)

    def best_model(self) -> Any:
        """The best trial's best epoch as a ``keras.Model`` (loaded with safe_mode)."""
        best = self.best
        if best.checkpoint is None or not best.checkpoint.is_file():
            raise ConfigError(
                f"trial {best.number}: its checkpoint {best.checkpoint or '(none)'} is gone "
                "(deleted by keep_checkpoints, or moved)"
            )
        from sweep.core.tfenv import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        return keras.saving.load_model(str(best.checkpoint), safe_mode=True)

    def compare(
        self,
        patience: int | list[int] | None = None,
        min_delta: float | list[float] | None = None,
    ) -> pd.DataFrame:
        """Other early-stopping settings replayed on the recorded curves: the rows of
        stopping.csv (written, with stopping.png, as ``sweep compare`` does). Values are
        checked as ``sweep.run`` checks them (a ``ConfigError`` otherwise)."""
        import pandas as pd

        from sweep.views import compare as cmp

        trials = self._reader.trials()
        patiences, deltas = cmp.recorded_settings(self._optuna, trials)
        if patience is None or patience == []:
            patience = sorted(set(cmp.DEFAULT_PATIENCE) | patiences)
        if min_delta is None or min_delta == []:
            min_delta = sorted(set(cmp.DEFAULT_MIN_DELTA) | deltas)
        results = cmp.compare(self._optuna, patience=patience, min_delta=min_delta, trials=trials)
        cmp.write_outputs(results, self.folder)
        return pd.DataFrame([asdict(r) for r in results], columns=cmp.COLUMNS)

    def export(
        self,
        path: str | Path,
        trial: int | None = None,
        format: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """The verified export of a trial's best model (default: the best trial); returns
        its model card."""
        from sweep.core.tfenv import import_tensorflow_quietly
        from sweep.views.export import export

        import_tensorflow_quietly()
        done = export(
            self._optuna,
            trial_number=trial,
            out=Path(path),
            fmt=format,
            force=force,
            space=self._space,
        )
        card: dict[str, Any] = json.loads(done.card.read_text(encoding="utf-8"))
        return card

    def report(self) -> Path:
        """Write ``report.html`` in the study's folder; return its path."""
        from sweep.views.report import write_report

        return write_report(self._optuna, self.folder)

    def status(self) -> Status:
        """Trials by state, the best so far, the running and the interrupted ones."""
        from sweep.views.status import status

        return status(self._optuna, folder=self.folder)
