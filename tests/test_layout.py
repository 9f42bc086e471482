"""The architecture as a check: services stand side by side and meet only through services/common (and the records
in protos/); nothing shipped imports the test tooling. Fails naming the file, line and import that breaks it."""

from __future__ import annotations

import ast
from pathlib import Path

from linksyn import registry

PACKAGE = Path(__file__).resolve().parents[1] / "services"
SERVICE_PACKAGES = tuple(registry.SERVICES)


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in `path`; relative imports resolved against its package."""
    package = ["linksyn", *path.relative_to(root).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{a.name}" for a in node.names] if not node.module else [module]
            out += [(node.lineno, m) for m in names]
    return out


def _violations(owner: str, allowed: set[str], root: Path = PACKAGE) -> list[str]:
    """Imports of linksyn.<service> (a service other than the allowed ones) by the files of package `owner`."""
    found = []
    for path in sorted((root / owner).rglob("*.py")):
        for line, module in _imports(path, root):
            parts = module.split(".")
            if len(parts) > 1 and parts[0] == "linksyn" and parts[1] in SERVICE_PACKAGES and parts[1] not in allowed:
                found.append(f"{path.relative_to(root.parent)}:{line}: imports {module}")
    return found


def test_no_service_package_imports_another():
    bad = [v for svc in SERVICE_PACKAGES for v in _violations(svc, allowed={svc})]
    assert not bad, "contracts between services belong in services/common:\n" + "\n".join(bad)


def test_common_imports_no_service_package():
    bad = _violations("common", allowed=set())
    assert not bad, "services/common is below every service:\n" + "\n".join(bad)


def test_the_report_reads_outputs_through_common_contracts():
    """`linksyn report` must work on what a cluster leaves (files): it imports no service package, except the
    sampler's walkers in report/coverage.py (coverage curves drawn offline; walking has no contract in common)."""
    found = _violations("report", allowed=set())
    bad = [v for v in found if not (v.startswith("services/report/coverage.py:") and "imports linksyn.sampler." in v)]
    assert not bad, "the report reads files through services/common:\n" + "\n".join(bad)


def test_service_wiring_takes_its_section_not_the_root_config():
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}"
        for svc in SERVICE_PACKAGES
        for path in sorted((PACKAGE / svc).glob("app.py"))
        for line, module in _imports(path)
        if module == "linksyn.config" or module.startswith("linksyn.config.")
    ]
    assert not bad, "a service's app.build gets its own section and the shared ones:\n" + "\n".join(bad)


def test_nothing_shipped_imports_the_test_tooling():
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, module in _imports(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path):
    """The scanner itself: an import of another service, absolute or relative, is found; its own are not."""
    probe = tmp_path / "services" / "sampler" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from linksyn.graph.build import KPGraph\nfrom ..synth import stage\nfrom . import walk\n"
        "import linksyn.common.grades\n", encoding="utf-8",
    )
    assert _violations("sampler", allowed={"sampler"}, root=tmp_path / "services") == [
        "services/sampler/probe.py:1: imports linksyn.graph.build",
        "services/sampler/probe.py:2: imports linksyn.synth",
    ]
