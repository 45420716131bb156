"""The layers stay layers: no import circle among the services, nothing imported back from the package
root, and every module imports on its own (a hidden circle shows up as an ImportError there)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "limonbilling"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """Every module `module` imports, at the top or inside a function; `from pkg import sub` names `pkg.sub`."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules or {base})
    return {name for name in found if name in MODULES and name != module}


def _cycles(nodes: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {module: _imports(module) & nodes for module in nodes}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(nodes):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_among_the_services_or_below_them():
    lower = {name for name in MODULES if name.startswith(("limonbilling.services", "limonbilling.models",
                                                          "limonbilling.payments"))}
    lower |= {"limonbilling.clock", "limonbilling.signals", "limonbilling.transports", "limonbilling.formatting",
              "limonbilling.extensions", "limonbilling.throttle", "limonbilling.links", "limonbilling.labels"}
    assert _cycles(lower) == []


def test_services_and_models_import_nothing_from_above():
    """Not the package root's names, not a blueprint, not the HTTP layer."""
    above = {name for name in MODULES if name.startswith(("limonbilling.admin", "limonbilling.portal",
                                                          "limonbilling.api"))} | {"limonbilling", "limonbilling.auth"}
    for module in MODULES:
        if module.startswith(("limonbilling.services", "limonbilling.models", "limonbilling.payments")):
            assert not _imports(module) & above, module


def test_a_circle_is_found_when_there_is_one():
    """The finder itself: a module graph known to be circular (a blueprint and its views) is reported."""
    assert ["limonbilling.api", "limonbilling.api.views"] in _cycles({"limonbilling.api", "limonbilling.api.views"})


@pytest.mark.slow
def test_every_module_below_the_blueprints_imports_on_its_own():
    """Each in a fresh set of our modules (third-party ones stay loaded: they are not ours to check).
    The blueprints are imported by create_app in every other test."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'limonbilling' or m.startswith('limonbilling.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    blueprints = ("limonbilling.admin", "limonbilling.portal", "limonbilling.api")
    modules = [name for name in MODULES if not name.endswith("__main__") and not name.startswith(blueprints)]
    result = subprocess.run([sys.executable, "-c", script, *modules], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
