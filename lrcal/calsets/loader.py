"""Loading and validating a calibration-set directory.

``validate_set`` reports every problem; ``load_set`` returns a ``CalibrationSet`` or
raises ``SetError`` with a one-line message (first problem + how many more).

Version: ``sha256("lrcal-calibration-set-v1\\n" + sha256(manifest bytes) +
for each distinct image path, sorted: path + "\\0" + sha256(image bytes))``, hex.
It changes whenever the manifest or any image byte changes, and not when files
are only copied or moved together (set.json is not part of it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lrcal.calsets import images as _images
from lrcal.calsets.format import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    TASK_GROUPS,
    CalibrationSet,
    Example,
    Problem,
    SetError,
    normalize_question,
    ordered_groups,
)
from lrcal.calsets.manifest import iter_lines, parse_record, show
from lrcal.calsets.set_info import SetInfo, read_set_info

VERSION_PREFIX = b"lrcal-calibration-set-v1\n"


@dataclass
class _Scan:
    shown_dir: Path
    problems: list[Problem] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    info: SetInfo = field(default_factory=SetInfo)
    real_dir: Path | None = None
    manifest_sha256: bytes | None = None
    image_digests: dict[str, bytes] = field(default_factory=dict)  # normalized path -> sha256 digest
    first_of_prompt: dict[tuple, Example] = field(default_factory=dict)  # prompt key -> first example


class _HashingReader:
    """Feeds every byte read through a hash (the manifest is hashed while it is parsed)."""

    def __init__(self, handle, digest):
        self._handle = handle
        self._digest = digest
        self.total = 0

    def readline(self, limit: int = -1) -> bytes:
        chunk = self._handle.readline(limit)
        self._digest.update(chunk)
        self.total += len(chunk)
        if self.total > MAX_MANIFEST_BYTES:
            raise _ManifestTooLarge()
        return chunk


class _ManifestTooLarge(Exception):
    pass


def validate_set(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the set at ``path`` (an empty list means it loads)."""
    return _scan(Path(path)).problems


def load_set(path: str | os.PathLike[str]) -> CalibrationSet:
    """Load a validated set, or raise ``SetError`` naming the first problem's file:line."""
    scan = _scan(Path(path))
    if scan.problems:
        raise SetError(summarize_problems(scan.problems, Path(path)), scan.problems)
    assert scan.real_dir is not None and scan.manifest_sha256 is not None
    groups = ordered_groups({ex.task_group for ex in scan.examples})
    return CalibrationSet(
        name=scan.info.name or scan.real_dir.name,
        path=scan.real_dir,
        version=compute_version(scan.manifest_sha256, scan.image_digests),
        examples=tuple(scan.examples),
        task_groups=groups,
        description=scan.info.description,
    )


def summarize_problems(problems: list[Problem], path: Path) -> str:
    first = problems[0]
    text = f"{first.location}: {first.message}"
    more = len(problems) - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''}; list them with 'lrcal sets validate {path}')"
    return text


def set_version(path: str | os.PathLike[str]) -> str:
    """The content version of a valid set (raises SetError otherwise)."""
    return load_set(path).version


def read_image_bytes(example: Example) -> bytes:
    """The example's image bytes, checked against the hash recorded when the set was loaded."""
    if example.image_path is None:
        raise SetError(f"example {example.id!r} has no image")
    shown = example.image or str(example.image_path)
    try:
        data = _images.read_checked_bytes(example.image_path, shown)
    except _images.ImageProblem as exc:
        raise SetError(f"example {example.id!r}: {exc.message}") from None
    if example.image_sha256 is not None and hashlib.sha256(data).hexdigest() != example.image_sha256:
        raise SetError(f"example {example.id!r}: image {shown!r} changed since the set was loaded")
    return data


def image_mime_type(example: Example) -> str:
    """``image/png`` etc., from the image's magic bytes (not its file name)."""
    return mime_type_for_bytes(read_image_bytes(example))


def mime_type_for_bytes(data: bytes) -> str:
    try:
        return _images.mime_type_for_bytes(data)
    except ValueError as exc:
        raise SetError(str(exc)) from None


def image_data_url(example: Example) -> str:
    """``data:<mime>;base64,...`` for OpenAI-compatible image content parts."""
    data = read_image_bytes(example)
    return f"data:{mime_type_for_bytes(data)};base64,{base64.b64encode(data).decode('ascii')}"


# ---- the scan ---------------------------------------------------------------


def _scan(path: Path) -> _Scan:
    scan = _Scan(shown_dir=path)
    manifest_shown = str(path / MANIFEST_NAME)
    try:
        real_dir = path.resolve(strict=True)
    except (OSError, RuntimeError):
        scan.problems.append(Problem(str(path), None, None, "not_a_directory", f"{str(path)!r} does not exist"))
        return scan
    if not real_dir.is_dir():
        scan.problems.append(
            Problem(str(path), None, None, "not_a_directory", "a calibration set is a directory holding manifest.jsonl")
        )
        return scan
    scan.real_dir = real_dir

    scan.info = read_set_info(real_dir, path, scan.problems)
    known_groups = set(TASK_GROUPS) | set(scan.info.task_groups)

    manifest = real_dir / MANIFEST_NAME
    try:
        st = os.stat(manifest)
    except OSError:
        scan.problems.append(Problem(manifest_shown, None, None, "missing_manifest", "manifest.jsonl does not exist"))
        return scan
    if not stat.S_ISREG(st.st_mode):
        scan.problems.append(Problem(manifest_shown, None, None, "missing_manifest", "manifest.jsonl is not a regular file"))
        return scan

    digest = hashlib.sha256()
    first_line_of: dict[str, int] = {}
    image_cache: dict[str, _images.ImageInfo | _images.ImageProblem] = {}
    try:
        with open(manifest, "rb") as handle:
            reader = _HashingReader(handle, digest)
            for raw in iter_lines(reader):  # type: ignore[arg-type]
                _scan_line(scan, raw, manifest_shown, known_groups, first_line_of, image_cache)
    except _ManifestTooLarge:
        scan.problems.append(
            Problem(
                manifest_shown, None, None, "manifest_too_large", f"manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB"
            )
        )
        return scan
    except OSError as exc:
        scan.problems.append(
            Problem(manifest_shown, None, None, "missing_manifest", f"manifest cannot be read ({exc.strerror or exc})")
        )
        return scan
    scan.manifest_sha256 = digest.digest()
    if not scan.examples and not scan.problems:
        scan.problems.append(Problem(manifest_shown, None, None, "empty_set", "manifest has no examples"))
    return scan


def _scan_line(
    scan: _Scan,
    raw,
    manifest_shown: str,
    known_groups: set[str],
    first_line_of: dict[str, int],
    image_cache: dict,
) -> None:
    record = parse_record(raw, known_groups)
    issues = list(record.issues)
    ident = record.example_id
    if ident is not None:
        # ids equal once Unicode-normalised ("é" composed or not) are the same id to a reader
        key = unicodedata.normalize("NFC", ident)
        if key in first_line_of:
            issues.append(("duplicate_id", f"duplicate id {show(ident)} (first on line {first_line_of[key]})"))
        else:
            first_line_of[key] = record.line

    info: _images.ImageInfo | None = None
    relative = record.fields.get("image")
    if isinstance(relative, str):
        key = _normalized(relative)
        cached = image_cache.get(key)
        if cached is None:
            assert scan.real_dir is not None
            try:
                cached = _images.check_image(scan.real_dir, relative)
            except _images.ImageProblem as exc:
                cached = exc
            image_cache[key] = cached
        if isinstance(cached, _images.ImageProblem):
            issues.append((cached.kind, cached.message))
        else:
            info = cached
            scan.image_digests[key] = bytes.fromhex(cached.sha256)

    for kind, message in issues:
        scan.problems.append(Problem(manifest_shown, record.line, ident, kind, message))
    if issues:
        return
    fields = record.fields
    example = Example(
        id=fields["id"],
        task_group=fields["task_group"],
        question=fields["question"],
        answer=fields["answer"],
        answer_type=fields["answer_type"],
        choices=fields.get("choices"),
        image=relative if isinstance(relative, str) else None,
        tolerance=fields.get("tolerance"),
        meta=fields.get("meta") or {},
        image_path=info.path if info else None,
        image_sha256=info.sha256 if info else None,
        line=record.line,
    )
    repeat = _repeat_problem(scan, example)
    if repeat is not None:
        scan.problems.append(Problem(manifest_shown, record.line, ident, *repeat))
        return
    scan.examples.append(example)


def _repeat_problem(scan: _Scan, example: Example) -> tuple[str, str] | None:
    """An example asking what an earlier one asked (same image bytes, question and options):
    with another answer the set contradicts itself; with the same one it counts it twice."""
    from lrcal.calsets.scoring import comparable

    choices = tuple(comparable(c)[0] for c in example.choices) if example.choices else None
    key = (example.image_sha256 or "", normalize_question(example.question), choices)
    first = scan.first_of_prompt.setdefault(key, example)
    if first is example:
        return None
    where = f"the same image and question as line {first.line} (id {show(first.id)})"
    if first.answer_type != example.answer_type:
        types = f"{first.answer_type} vs {example.answer_type}"
        return ("conflicting_answers", f"{where} with another answer_type ({types})")
    if _reference_of(first) != _reference_of(example):
        return ("conflicting_answers", f"{where} with another answer ({show(first.answer)} vs {show(example.answer)})")
    return ("duplicate_example", f"{where} and the same answer; remove one")


def _reference_of(example: Example) -> object:
    """The reference as scoring reads it: "Yes"/"yes", "dog"/"B" (for option B) are one answer."""
    from lrcal.calsets import scoring

    if example.answer_type == "multiple_choice":
        return scoring.reference_choice_index(example.answer, example.choices)
    if example.answer_type == "number":
        parsed = scoring.parse_reference(example.answer)
        return (parsed.value, parsed.percent) if parsed else example.answer
    if example.answer_type == "yes_no":
        return scoring.reference_yes_no(example.answer)
    return scoring.comparable(example.answer)[0]


def _normalized(relative: str) -> str:
    return PurePosixPath(relative).as_posix()


def compute_version(manifest_sha256: bytes, image_digests: dict[str, bytes]) -> str:
    """The set version from the manifest digest and {normalized image path: image digest}."""
    h = hashlib.sha256(VERSION_PREFIX)
    h.update(manifest_sha256)
    for key in sorted(image_digests):
        h.update(key.encode("utf-8") + b"\0" + image_digests[key])
    return h.hexdigest()
