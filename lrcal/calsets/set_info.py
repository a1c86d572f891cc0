"""Reading a set's optional ``set.json``: its name, description and declared task groups.

Every problem is reported as a ``Problem`` on set.json (kind ``bad_set_info``); a missing file
is no problem (the folder's name names the set, the examples give its groups).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrcal.calsets.format import MAX_SET_INFO_BYTES, SET_INFO_NAME, Problem, set_name_problem
from lrcal.calsets.manifest import encodable, json_type
from lrcal.input_files import has_hidden_characters


@dataclass
class SetInfo:
    name: str | None = None
    description: str | None = None
    task_groups: tuple[str, ...] = ()


def read_set_info(real_dir: Path, path: Path, problems: list[Problem]) -> SetInfo:
    """What ``real_dir``'s set.json declares; its problems are appended to ``problems``, named
    under ``path`` (the folder as the user gave it)."""
    info = SetInfo()
    info_path = real_dir / SET_INFO_NAME
    shown = str(path / SET_INFO_NAME)

    def problem(kind: str, message: str) -> None:
        problems.append(Problem(shown, None, None, kind, message))

    try:
        st = os.stat(info_path)
    except OSError:
        return info  # optional
    if not stat.S_ISREG(st.st_mode):
        problem("bad_set_info", "set.json is not a regular file")
        return info
    if st.st_size > MAX_SET_INFO_BYTES:
        problem("bad_set_info", f"set.json is larger than {MAX_SET_INFO_BYTES >> 20} MiB")
        return info
    try:
        obj: Any = json.loads(info_path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        problem("bad_set_info", f"set.json is not valid UTF-8 JSON ({' '.join(str(exc).split())[:160]})")
        return info
    if not isinstance(obj, dict):
        problem("bad_set_info", f"set.json must be a JSON object, got {json_type(obj)}")
        return info
    name = obj.get("name")
    if name is not None:
        name_problem = set_name_problem(name) if isinstance(name, str) else "set.json 'name' must be a string"
        if name_problem:
            problem("bad_set_info", f"set.json 'name': {name_problem}")
        else:
            info.name = name
    description = obj.get("description")
    if description is not None:
        if not isinstance(description, str) or not encodable(description):
            problem("bad_set_info", "set.json 'description' must be a string")
        else:
            info.description = description
    groups = obj.get("task_groups")
    if groups is not None:
        if not isinstance(groups, list) or not all(isinstance(g, str) and _clean_label(g, 64) for g in groups):
            problem("bad_set_info", "set.json 'task_groups' must be a list of non-empty strings (<= 64 characters)")
        else:
            info.task_groups = tuple(groups)
    return info


def _clean_label(text: str, limit: int) -> bool:
    return (
        bool(text.strip())
        and len(text) <= limit
        and encodable(text)
        and not has_hidden_characters(text)
    )
