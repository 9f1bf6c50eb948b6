"""The house in layers: every import of edge/ and convert/ read from the source, checked against the one rule.

Lower layers never import higher ones, sibling packages of one layer never import each other, and no group of
modules imports itself round in a circle. Imports inside functions (lazy ones) count too: a lazy upward import
is still an upward dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

#: Package (or bottom module) -> layer. A module may import its own package and anything of a lower layer.
LAYERS = {
    "edge.errors": 0, "edge.files": 0,
    "edge.core": 1,
    "edge.config": 2, "edge.storage": 2, "edge.devices": 2,
    "edge.mqtt": 3, "edge.eval": 3,
    "edge.daemon": 4,
    "edge.cli": 5,
    "convert": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every project module ``path`` imports (``from a.b import c`` counts as ``a.b`` or ``a.b.c``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("edge", "convert")}


def package_of(module: str) -> str:
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    if module == "edge":
        return "edge"
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def layer(package: str) -> int:
    """``edge/__init__.py`` (which imports only :mod:`edge.errors`) counts as the bottom."""
    return 0 if package == "edge" else LAYERS[package]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = sorted((REPO / "edge").rglob("*.py")) + sorted((REPO / "convert").rglob("*.py"))
    modules = {module_name(p): p for p in files}
    return {name: {m for m in imports(path) if m in modules} for name, path in modules.items()}


def test_every_module_is_in_a_layer(graph):
    for module in graph:
        package_of(module)


def test_no_upward_or_sideways_import(graph):
    """Sibling packages of one layer (devices, storage, config) never import each other either."""
    wrong = []
    for module, targets in graph.items():
        here = package_of(module)
        for target in targets:
            there = package_of(target)
            if there in (here, "edge"):
                continue
            if not layer(there) < layer(here):
                wrong.append(f"{module} (layer {layer(here)}) imports {target} (layer {layer(there)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles(graph):
    """Tarjan's strongly connected components: any component of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_rule_is_checked_for_real(graph):
    """The checks above would see a violation: a planted upward import and a planted cycle are caught."""
    planted = {k: set(v) for k, v in graph.items()}
    planted["edge.core.crop"].add("edge.daemon.loop")
    with pytest.raises(AssertionError, match="edge.core.crop .*imports edge.daemon.loop"):
        test_no_upward_or_sideways_import(planted)
    planted["edge.daemon.loop"].add("edge.core.crop")
    planted["edge.core.crop"] = planted["edge.core.crop"] | {"edge.daemon.loop"}
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycles(planted)


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_core_pulls_in_no_device_or_network_code():
    core = sorted(module_name(p) for p in (REPO / "edge" / "core").glob("*.py"))
    loaded = _loaded_after("".join(f"import {m}\n" for m in core))
    unwanted = {m for m in loaded if m.split(".")[0] in ("paho", "gpiozero", "picamera2", "tensorflow")
                or m.startswith(("edge.devices", "edge.mqtt", "edge.storage", "edge.daemon", "edge.cli"))}
    assert not unwanted, sorted(unwanted)
    assert "edge.core.pipeline" in loaded  # the walk above imported the modules it claims to


def test_relay_off_imports_only_what_drives_the_relay(tmp_path):
    """systemd's safety net after a crash: no numpy, no OpenCV, no model, no MQTT; gpiozero and the config only."""
    config = tmp_path / "door.toml"
    config.write_text('[relay]\npin = 17\npin_factory = "mock"\n[device]\nid = "d"\n')  # other sections missing
    loaded = _loaded_after(f"from edge.cli import main\nassert main(['relay-off', '--config', {str(config)!r}]) == 0")
    heavy = {m for m in loaded if m.split(".")[0] in ("numpy", "cv2", "paho", "ai_edge_litert", "tflite_runtime")
             or m.startswith(("edge.core", "edge.storage", "edge.daemon", "edge.mqtt", "edge.eval"))}
    assert not heavy, sorted(heavy)
    assert "gpiozero" in loaded and "edge.devices.relay" in loaded
