"""``sweep report``: one self-contained HTML file (no network, images inlined), every study
value escaped, the stopping comparison when ``sweep compare`` ran, checked in a real
headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space

from sweep.store.storage import load_existing_study
from sweep.views.report import _SCRIPT as PAGE_SCRIPT
from sweep.views.report import write_report

PNG = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r"<img\b[^>]*>")
SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture
def tiny_copy(finished_sweep: Path, tmp_path: Path) -> Path:
    """A writable copy of the finished 3-trial sweep's results folder."""
    results = tmp_path / "results"
    shutil.copytree(finished_sweep / "results", results)
    # other tests run report/compare on the shared sweep: start from the sweep's own files
    for generated in ("report.html", "stopping.csv", "stopping.png"):
        (results / "tiny" / generated).unlink(missing_ok=True)
    return results


def report_for(results: Path, name: str = "tiny") -> tuple[Path, str]:
    study = load_existing_study(name, results_dir=results, storage=None)
    path = write_report(study, results / name)
    return path, path.read_text(encoding="utf-8")


def inline_pngs(page: str) -> list[bytes]:
    """Every <img> must be a PNG data URI; return the decoded images."""
    images = []
    for tag in IMG.findall(page):
        match = SRC.search(tag)
        assert match, f"not an inline PNG: {tag[:120]}"
        images.append(base64.b64decode(match.group(1), validate=True))
    return images


def test_report_is_one_self_contained_file(tiny_copy: Path) -> None:
    folder = tiny_copy / "tiny"
    before = set(os.listdir(folder))
    path, page = report_for(tiny_copy)
    assert path == folder / "report.html"
    assert set(os.listdir(folder)) - before == {"report.html"}  # no temp file, no side files
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\bsrc", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert "url(" not in page and "@import" not in page  # no CSS fetches either
    images = inline_pngs(page)
    assert len(images) == 3  # curves, best score by trial, epochs trained
    assert all(img.startswith(PNG) and len(img) > 5000 for img in images)
    assert "Study tiny" in page and "val_loss" in page
    assert page.count("<tr class=") == 3  # the three trials
    assert "Not computed" in page  # 3 trials: too few for importances, said so
    assert 'id="stopping"' not in page  # sweep compare did not run


def test_stopping_comparison_appears_after_compare(tiny_copy: Path) -> None:
    code, _, err = run_cli("compare", "tiny", cwd=tiny_copy.parent)
    assert code == 0, err
    _, page = report_for(tiny_copy)
    assert 'id="stopping"' in page
    header = (tiny_copy / "tiny" / "stopping.csv").read_text().splitlines()[0]
    assert "".join(f"<th>{c}</th>" for c in header.split(",")) in page
    stopping_png = base64.b64encode((tiny_copy / "tiny" / "stopping.png").read_bytes()).decode()
    assert stopping_png in page
    assert len(inline_pngs(page)) == 4


ESCAPE_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def build_model(hp):
    if hp.Choice("tag", ["plain", "<b>x</b>"]) == "<b>x</b>":
        raise ValueError("<script>alert(1)</script>")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""


def test_values_from_the_study_are_escaped(tmp_path: Path) -> None:
    space = write_space(tmp_path, "esc", source=ESCAPE_SPACE, settings={"epochs": 2, "trials": 2})
    code, _, err = run_cli("run", str(space), "--sampler", "grid", "--seed", "1", cwd=tmp_path)
    assert code == 0, err
    _, page = report_for(tmp_path / "results", "esc")
    assert '<tr class="failed">' in page and '<tr class="complete">' in page
    for raw in ("<script>alert(1)</script>", "<b>x</b>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the error text
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # the parameter value
    assert page.count("<script") == 1  # only the report's own


def test_importances_and_curves_without_files(tmp_path: Path) -> None:
    """A study with no trial files (curves from Optuna's intermediate values), enough trials
    for importances, and HTML in its name and a parameter name."""
    study = optuna.create_study(study_name="<i>s</i>&", direction="minimize")
    study.set_user_attr("monitor", "val_loss")
    study.set_user_attr("mode", "min")
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "units": optuna.distributions.IntDistribution(4, 64),
        "<b>p</b>": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    for n in range(8):
        params = {"lr": 10 ** -(1 + n % 3), "units": 4 + 8 * n, "<b>p</b>": "ab"[n % 2]}
        stop = 3 + n % 4
        curve = {e: 1.0 / e + 0.1 * n for e in range(1, stop + 1)}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=min(curve.values()),
                intermediate_values=curve,
                user_attrs={
                    "best_score": min(curve.values()),
                    "best_epoch": stop,
                    "stop_epoch": stop,
                    "max_epochs": 8,
                    "early_stopped": stop < 6,
                    "monitor": "val_loss",
                    "mode": "min",
                },
            )
        )
    _, page = report_for_study(study, tmp_path)
    assert "<i>" not in page and "<b>p</b>" not in page
    assert "Study &lt;i&gt;s&lt;/i&gt;&amp;" in page
    assert "fANOVA" in page
    importance_table = page.split("fANOVA", 1)[1].split("</table>", 1)[0]
    assert importance_table.count("<tr>") == 4  # header + 3 parameters
    assert "&lt;b&gt;p&lt;/b&gt;" in importance_table
    assert "stopped early (" in page
    assert len(inline_pngs(page)) == 3


def report_for_study(study: optuna.Study, folder: Path) -> tuple[Path, str]:
    path = write_report(study, folder)
    return path, path.read_text(encoding="utf-8")


# --- a real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]
CONSOLE = re.compile(r"CONSOLE|Uncaught")


def chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` headless; return stdout and the console lines from stderr."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    proc = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]


def test_browser_check_sees_errors(tmp_path: Path) -> None:
    """The checks below can fail: a broken image and a console error are seen."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
        f"<script>{PAGE_SCRIPT}console.error('boom');</script></body></html>",
        encoding="utf-8",
    )
    dom, console = browse(page, tmp_path, "--dump-dom")
    assert 'data-images-loaded="0/1"' in dom
    assert any("boom" in line for line in console)


def test_report_renders_in_a_headless_browser(tiny_copy: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("compare", "tiny", cwd=tiny_copy.parent)
    assert code == 0, err
    path, page = report_for(tiny_copy)
    total = len(inline_pngs(page))
    assert total == 4

    dom, console = browse(path, tmp_path, "--dump-dom")
    assert f'data-images-loaded="{total}/{total}"' in dom  # every image decoded
    assert 'data-results-rows="3"' in dom  # the browser built the table's 3 rows
    assert "Early-stopping settings compared" in dom
    assert console == []  # no console errors (nor CSP refusals)

    shot = tmp_path / "report.png"
    _, console = browse(path, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert console == []
    data = shot.read_bytes()
    assert data.startswith(PNG)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    from PIL import Image

    with Image.open(shot) as img:
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200  # text, tables and plots, not a blank page


def test_inline_png_check_rejects_other_images() -> None:
    with pytest.raises(AssertionError):
        inline_pngs('<img src="https://example.com/x.png">')
    with pytest.raises(binascii.Error):
        inline_pngs('<img src="data:image/png;base64,abc">')
