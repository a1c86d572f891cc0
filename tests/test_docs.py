"""Docs stay true: the CLI reference is generated from the commands and current."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_cli_reference_is_current():
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_cli_docs.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_every_command_is_documented():
    import typer.main

    from lrcal.cli import app

    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    root = typer.main.get_command(app)

    def names(command, prefix):
        subs = getattr(command, "commands", None)
        if not subs:
            yield prefix
            return
        for name, sub in subs.items():
            yield from names(sub, f"{prefix} {name}")

    missing = [n for n in names(root, "lrcal") if f"## `{n}`" not in text]
    assert not missing, f"undocumented commands: {missing}"


def test_readme_has_the_two_setup_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_store_doc_describes_every_table_and_column(tmp_path):
    """docs/store.md (for sqlite-utils and Datasette users) names every table of a new home's
    database under its own heading, and every column of it in that section."""
    from lrcal.store import Store

    doc = (REPO_ROOT / "docs" / "store.md").read_text()
    store = Store.open(tmp_path)
    try:
        tables = {t: store.db[t].columns_dict for t in store.db.table_names() if not t.startswith("sqlite_")}
    finally:
        store.close()
    missing = []
    for table, columns in tables.items():
        heading = f"## `{table}`"
        if heading not in doc:
            missing.append(table)
            continue
        section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
        missing += [f"{table}.{c}" for c in columns if f"`{c}`" not in section]
    assert not missing, f"docs/store.md does not describe: {missing}"
