"""``persisty files ls|put|get|rm|cp|gc|fsck`` on SQLite chunks and a directory store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from persisty.cli import cli
from persisty.testing._files_data import payload


def test_files_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'app.db'}"
    source = tmp_path / "big.bin"
    source.write_bytes(payload(5 * 1024 * 1024))

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["files", *args])
        assert result.exit_code == code, result.output
        return result.output

    assert "5242880 bytes" in run("put", db, "docs", "a/big.bin", str(source))
    assert "a/big.bin" in run("ls", db, "docs")
    run("cp", db, "docs", "a/big.bin", "b.bin")
    out = tmp_path / "out.bin"
    run("get", db, "docs", "b.bin", "-o", str(out))
    assert out.read_bytes() == source.read_bytes()
    assert "checked 2 file(s): 0 damaged" in run("fsck", db, "docs")
    run("rm", db, "docs", "a/big.bin", "b.bin")
    assert "removed 0 blob(s)" in run("gc", db, "docs", "--older-than", "0")
    assert "invalid_key" in run("put", db, "docs", "../x", str(source), code=1)
    assert "not_found" in run("get", db, "docs", "nope", code=1)
    # a store that cannot be opened is one error line too, never a traceback
    unopened = run("ls", "nope://x", "docs", code=1)
    assert "error:" in unopened and "Traceback" not in unopened
    directory = f"dir://{tmp_path / 'files'}"
    catalog = ["--catalog", f"sqlite:///{tmp_path / 'catalog.db'}"]
    run(
        "put",
        directory,
        "docs",
        "x.txt",
        str(source),
        "--content-type",
        "application/octet-stream",
        *catalog,
    )
    assert "x.txt" in run("ls", directory, "docs", *catalog)
    assert "x.txt" not in run("ls", directory, "docs", "--prefix", "y", *catalog)
