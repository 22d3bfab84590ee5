"""Generate the sync twins of persisty's async modules with unasyncd's transformer.

The files and name replacements are read from ``[tool.unasyncd]`` in pyproject.toml.
Run ``python scripts/generate_sync.py`` after editing an ``_async`` module;
``--check`` exits 1 and names the twins that are stale (CI runs it via the test suite).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from unasyncd.transformers import TreeTransformer

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# Generated from {source} by scripts/generate_sync.py - do not edit.\n"


def twins() -> dict[Path, tuple[Path, dict[str, str]]]:
    """Each async source with its sync target and the name replacements it needs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["unasyncd"]
    replacements = config.get("add_replacements", {})
    result = {}
    for source, target in config["files"].items():
        src, dst = ROOT / source, ROOT / target
        if src.is_dir():
            for file in sorted(src.rglob("*.py")):
                result[file] = (dst / file.relative_to(src), replacements)
        elif src.exists():
            result[src] = (dst, replacements)
    return result


def generate(source: Path, replacements: dict[str, str]) -> str:
    """The sync code for one async source file."""
    transformer = TreeTransformer(
        exclude=set(),
        transform_docstrings=True,
        extra_name_replacements=replacements,
        infer_type_checking_imports=False,
        ruff_fix=False,
        ruff_format=False,
        file_name=str(source),
    )
    rel = source.relative_to(ROOT).as_posix()
    code = HEADER.format(source=rel) + transformer(source.read_text())
    # the transformer renames uses of names but not the names in import statements;
    # by convention AsyncFoo becomes Foo and a module path's _async becomes _sync
    for old in sorted(replacements, key=len, reverse=True):
        code = re.sub(rf"(?<![\w.]){re.escape(old)}(?!\w)", replacements[old], code)
    code = re.sub(r"(?<![\w])Async([A-Z]\w*)", r"\1", code)
    code = re.sub(r"\._async\b", "._sync", code)
    # drop the async-only imports the transformation leaves behind, and sort the rest
    ruff = Path(sys.executable).with_name("ruff")
    fixed = subprocess.run(
        [str(ruff), "check", "--fix-only", "--select", "F401,I", "--stdin-filename",
         str(source.with_name("_sync.py")), "-"],
        input=code, capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return fixed.stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source, (target, replacements) in twins().items():
        code = generate(source, replacements)
        if target.exists() and target.read_text() == code:
            continue
        stale.append(target.relative_to(ROOT).as_posix())
        if not check:
            target.write_text(code)
    if check and stale:
        print("stale sync twins (run python scripts/generate_sync.py):", *stale, sep="\n  ")
        return 1
    for name in stale:
        print("wrote", name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
