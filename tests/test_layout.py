"""The TensorFlow boundary in the layout: pyproject's import-linter contract (run by
.ci/run as lint-imports) covers every module outside sweep.train, and those modules
import TensorFlow/Keras/KerasTuner/sweep.train only inside functions."""

from __future__ import annotations

import ast
import tomllib

from conftest import REPO

HEAVY = ("tensorflow", "keras", "keras_tuner", "sweep.train")


def _contract() -> dict[str, object]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return dict(contract)


def _modules_outside_train() -> set[str]:
    names = set()
    for path in (REPO / "sweep").glob("*.py"):
        names.add("sweep" if path.stem == "__init__" else f"sweep.{path.stem}")
    return names


def _module_level(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run on import: not in functions, not under ``if TYPE_CHECKING:``."""
    out = []
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            out += _module_level(node.orelse)
            continue
        out.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            out += _module_level(getattr(node, field, []))
    return out


def _heavy(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HEAVY)


def test_the_contract_covers_every_module_outside_train() -> None:
    assert set(_contract()["source_modules"]) == _modules_outside_train()  # type: ignore[arg-type]


def test_no_module_outside_train_imports_tensorflow_at_module_level() -> None:
    """What the contract's ignore_imports relies on: those imports are in functions."""
    found = []
    for path in sorted((REPO / "sweep").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _module_level(tree.body):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if _heavy(n)]
    assert found == []


def test_no_import_cycle_among_sweeps_modules() -> None:
    """Imports point one way: no module reaches back to one that imports it (grimp's graph,
    as lint-imports builds it; imports made for type checking only are left out)."""
    import grimp

    graph = grimp.build_graph(
        "sweep", include_external_packages=False, exclude_type_checking_imports=True
    )
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.add(" -> ".join((module, *back)))
    assert not cycles, "\n".join(sorted(cycles))
