"""The layering of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cni", "metaplugin", "delegates", "operator")
STDLIB = set(sys.stdlib_module_names)


def _imports(package: str) -> list[tuple[Path, str]]:
    """Every absolute module a package's files import (relative ones resolved)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parts = ["jaring", *path.relative_to(ROOT).with_suffix("").parts]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts[: len(parts) - node.level]
                    module = ".".join([*base, node.module] if node.module else base)
                else:
                    module = node.module or ""
                found.append((path, module))
    return found


def _top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def _jaring_pkg(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "jaring" and len(parts) > 1 else None


def test_cni_imports_only_the_standard_library_and_itself() -> None:
    bad = [
        (str(p), m) for p, m in _imports("cni") if _top(m) not in STDLIB and _jaring_pkg(m) != "cni"
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("metaplugin", {"delegates", "operator"}),
        ("delegates", {"metaplugin", "operator"}),
        ("cni", {"metaplugin", "delegates", "operator"}),
        ("operator", {"metaplugin", "delegates"}),
    ],
)
def test_packages_do_not_import_across_the_layers(package: str, forbidden: set[str]) -> None:
    bad = [(str(p), m) for p, m in _imports(package) if _jaring_pkg(m) in forbidden]
    assert bad == []


def test_operator_folder_never_shadows_the_standard_library_operator() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    import operator

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    assert Path(operator.__file__).parent == stdlib


def test_operator_from_the_repository_root_is_the_standard_library() -> None:
    """`-c` puts the current directory first on sys.path: the worst case."""
    code = (
        "import jaring.metaplugin.main, jaring.cni.skel, operator, sysconfig, pathlib;"
        "assert pathlib.Path(operator.__file__).parent == "
        "pathlib.Path(sysconfig.get_paths()['stdlib']), operator.__file__;"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_console_scripts_run_from_the_repository_root() -> None:
    """The installed `jaring` answers VERSION when started in the checkout."""
    script = Path(sys.executable).parent / "jaring"
    done = subprocess.run(
        [str(script)],
        cwd=ROOT,
        input=b'{"cniVersion":"1.0.0"}',
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"supportedVersions" in done.stdout
