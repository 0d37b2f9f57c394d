"""The package's layers point one way (docs/ARCHITECTURE.md): no module imports from a layer
above its own, and analysis, vis and export never import each other."""

import ast
import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "keras_resnet_lab"
FOUNDATION = {"__init__", "_checks", "_keras_compat", "_startup", "atomic", "catalog", "findings",
              "outdir", "parallel", "preprocessing_file", "saving"}
#: What each part may import besides the foundation (docs/ARCHITECTURE.md).
ALLOWED = {
    "layers": set(),
    "models": {"layers"},
    "data": set(),
    "training": set(),
    "analysis": {"layers", "models", "data", "training"},
    "vis": {"layers", "models", "data"},
    "export": {"layers", "models", "data"},
    "lab": {"layers", "models", "data", "training", "analysis", "vis", "export"},
    "commands": {"layers", "models", "data", "training", "analysis", "vis", "export", "lab"},
    "cli": {"commands"},
}
#: The foundation imports nothing heavy and nothing above it: only other foundation modules,
#: and the layers/models it registers or loads (saving, _startup).
FOUNDATION_ALLOWED = {"saving": {"layers", "models", "training"},
                      "_startup": {"layers", "models"},
                      "__init__": {"layers", "models"}}  # the public names


def _imports():
    found = collections.defaultdict(set)
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        part = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "keras_resnet_lab":
                    target = pieces[1] if len(pieces) > 1 else "__init__"
                    if target != part:
                        found[part].add((target, f"{rel}:{node.lineno}"))
    return found


def test_each_part_imports_only_the_parts_below_it():
    wrong = []
    for part, targets in _imports().items():
        allowed = FOUNDATION | ALLOWED.get(part, set()) | FOUNDATION_ALLOWED.get(part, set())
        if part in FOUNDATION and part not in FOUNDATION_ALLOWED:
            allowed = FOUNDATION
        wrong += [f"{where}: {part} imports {target}" for target, where in targets
                  if target not in allowed]
    assert wrong == [], "\n".join(sorted(wrong))


def test_the_rule_can_fail():
    # The check sees a real import of a layer above: the lab imports the analyses.
    assert any(target == "analysis" for target, _ in _imports()["lab"])
    assert "analysis" not in ALLOWED["vis"] and "lab" not in ALLOWED["analysis"]
