"""Import hygiene, checked statically (ast over the packages, nothing imported): the layering rules of the
architecture (docs/extending.md, /ARCHITECTURE): scenario -> engine -> results -> views, one way.

- core (twin/, networks/, agents/) never imports the views (dashboards/); CLI modules, the edge, may, but only
  lazily (inside a function);
- no domain module imports a CLI module;
- no production module imports agents/crowd/experiments.py, or another module's private (``_name``) helpers;
- networks/ stands alone (nothing from twin/ or agents/);
- no import cycles among module-level imports.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("twin", "agents", "networks", "dashboards")
CLI_MODULES = {"twin.cli", "twin.batch_cli", "run_scenario"} | {
    f"agents.{p.parent.name}.cli" for p in (ROOT / "agents").glob("*/cli.py")}
VIEWS = "dashboards"
EXPERIMENTS = "agents.crowd.experiments"


@dataclass(frozen=True)
class Imp:
    src: str  # importing module
    target: str  # imported module (resolved to an existing module or package)
    names: tuple[str, ...]  # names taken with "from target import names"
    lazy: bool  # inside a function (or under TYPE_CHECKING): not executed at import time
    line: int


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _files() -> dict[str, Path]:
    out = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    out["run_scenario"] = ROOT / "run_scenario.py"
    return out


FILES = _files()


def _resolve(name: str) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (None: third-party)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in FILES:
            return cand
    return None


def _imports(mod: str, path: Path) -> list[Imp]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[Imp] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.Import):
                for a in child.names:
                    t = _resolve(a.name)
                    if t:
                        out.append(Imp(mod, t, (), lazy, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative import
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (child.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                for a in child.names:
                    sub = _resolve(f"{base}.{a.name}")
                    if sub == f"{base}.{a.name}":  # "from pkg import module"
                        out.append(Imp(mod, sub, (), lazy, child.lineno))
                    elif (t := _resolve(base)) is not None:
                        out.append(Imp(mod, t, (a.name,), lazy, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return out


IMPORTS = [i for m, p in FILES.items() for i in _imports(m, p)]


def _top(mod: str) -> str:
    return mod.split(".")[0]


def _fmt(bad: list[Imp]) -> str:
    return "\n".join(f"{FILES[i.src].relative_to(ROOT)}:{i.line}: {i.src} -> {i.target} {i.names or ''}" for i in bad)


def test_the_scan_sees_the_imports():
    """The static scan finds known imports (so the rules below are not passing on an empty list)."""
    pairs = {(i.src, i.target) for i in IMPORTS}
    assert ("twin.engine", "twin.registry") in pairs
    assert ("agents.traffic.meso", "agents.traffic.meso_kernel") in pairs
    assert any(i.src == "twin.cli" and i.target.startswith("dashboards") and i.lazy for i in IMPORTS)
    assert len(FILES) > 60


def test_core_never_imports_the_views_and_the_cli_only_lazily():
    """twin/, networks/, agents/ do not import dashboards/; CLI modules may, inside a function."""
    bad = [i for i in IMPORTS if _top(i.target) == VIEWS and _top(i.src) != VIEWS
           and (i.src not in CLI_MODULES or not i.lazy)]
    assert not bad, "core -> views imports:\n" + _fmt(bad)


def test_domains_never_import_the_cli():
    """No module of agents/ (other than a domain's own cli.py) and no core module imports a CLI module."""
    bad = [i for i in IMPORTS if i.target in CLI_MODULES and i.src not in CLI_MODULES]
    assert not bad, "imports of CLI modules:\n" + _fmt(bad)


def test_networks_stands_alone():
    """networks/ imports nothing from twin/, agents/ or dashboards/."""
    bad = [i for i in IMPORTS if _top(i.src) == "networks" and _top(i.target) != "networks"]
    assert not bad, _fmt(bad)


def test_no_production_import_of_experiments_or_private_helpers():
    """agents/crowd/experiments.py is for bench/ and validation/ only; ``_private`` names stay in their module."""
    bad = [i for i in IMPORTS if i.target == EXPERIMENTS and i.src != EXPERIMENTS]
    assert not bad, "imports of experiments.py:\n" + _fmt(bad)
    private = [i for i in IMPORTS if any(n.startswith("_") and not n.startswith("__") for n in i.names)
               and i.target != i.src]
    assert not private, "imports of private names:\n" + _fmt(private)


def test_no_import_cycles():
    """Module-level imports form no cycle (lazy imports inside functions are how a cycle is broken)."""
    g = nx.DiGraph()
    g.add_nodes_from(FILES)
    for i in IMPORTS:
        if not i.lazy and i.target != i.src:
            g.add_edge(i.src, i.target)
    cycles = [c for c in nx.simple_cycles(g)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles[:10])


@pytest.mark.parametrize("rule", ["cycle", "view"])
def test_the_checks_catch_a_planted_violation(rule, tmp_path):
    """A module-level core -> views import and a two-module cycle are both reported by the same scan."""
    if rule == "view":
        src = "import dashboards.report\n"
        imps = _imports("twin.fake", _write(tmp_path, src))
        assert imps and _top(imps[0].target) == VIEWS and not imps[0].lazy
    else:
        a = _imports("twin.scenario", _write(tmp_path, "from twin.engine import CityTwin\n"))
        g = nx.DiGraph([(i.src, i.target) for i in a] + [("twin.engine", "twin.scenario")])
        assert list(nx.simple_cycles(g))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "m.py"
    p.write_text(text)
    return p
