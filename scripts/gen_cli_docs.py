#!/usr/bin/env python3
"""Regenerate docs/cli.md from the CLI itself (a test checks it is current).

    python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check  # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"

HEADER = """# CLI reference

Generated from the commands themselves by `python scripts/gen_cli_docs.py`; a test fails
when this file is out of date. Every command accepts the global option
`--home DIR` (before the command name): the directory holding `lrcal.db` and the router
artifacts (default: `$LRCAL_HOME`, else the platform user-data directory).

Errors are printed as one line, `Error: ...`, with exit code 1 (2 for usage errors).
`lrcal --version` prints the version.

Commands that list rows take `--table` (the default), `--json` or `--csv`, as sqlite-utils
does. JSON and CSV always carry every field. A table fits the terminal: when it is narrow the
table cuts long text columns, then hides its least important columns in a fixed order, and says
below which ones it hid (`Hidden at 80 columns: ...`).
"""


def walk(command, path: list[str]):
    from typer.main import get_command  # noqa: F401  (ensures typer is importable)

    subcommands = getattr(command, "commands", None)
    if subcommands and path and [p for p in command.params if p.name != "help"]:
        yield path, command  # a group that does something itself (`lrcal models` lists them)
    if subcommands:
        for name in command.list_commands(None):
            sub = subcommands[name]
            if getattr(sub, "hidden", False):
                continue
            yield from walk(sub, path + [name])
    else:
        yield path, command


def _param_row(param) -> str:
    names = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
    kind = "argument" if param.param_type_name == "argument" else "option"
    if getattr(param, "is_flag", False):
        type_name = "flag"
    else:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        type_name = {"str": "text", "int": "integer", "float": "number", "Path": "path"}.get(type_name, type_name)
    default = param.default
    if callable(default) or default is None or default is False or default in ((), []) or kind == "argument":
        default_text = ""
    else:
        default_text = f"`{default}`"
    required = " (required)" if param.required else ""
    help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    if kind == "argument":
        names = f"`{param.name.upper()}`"
    return f"| {names} | {type_name}{required} | {default_text} | {help_text} |"


def render() -> str:
    import typer.main

    from lrcal.cli import app
    from lrcal.cli.help_text import example_lines

    root = typer.main.get_command(app)
    out = [HEADER]
    groups: dict[str, list[str]] = {}
    for path, command in walk(root, []):
        full = "lrcal " + " ".join(path)
        section = [f"## `{full}`", ""]
        help_text = (command.help or "").strip()
        if help_text:
            section += [help_text, ""]
        params = [p for p in command.params if p.name not in ("help",)]
        usage_args = " ".join(
            (p.name.upper() if p.required else f"[{p.name.upper()}]") for p in params if p.param_type_name == "argument"
        )
        section += ["```", f"{full} [OPTIONS] {usage_args}".rstrip(), "```", ""]
        if params:
            section += ["| name | type | default | help |", "|---|---|---|---|"]
            section += [_param_row(p) for p in params]
            section.append("")
        examples = example_lines(command.epilog)
        if examples:
            section += ["Examples:", "", "```", *examples, "```", ""]
        groups.setdefault(path[0], []).append("\n".join(section))
    for name in groups:
        out.extend(groups[name])
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print("docs/cli.md is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
