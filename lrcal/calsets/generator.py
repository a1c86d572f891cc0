"""Deterministic pillow generator of calibration sets (the built-in sets and the demo's
training set).

Example ``i`` of a set belongs to task group ``groups[i % len(groups)]``, and within its
group cycles through that group's subtypes; all its randomness comes from
``sha256("lrcal-gen-v1|<name>|<seed>|<i>|<attempt>")``. Hence:

- the same (name, n, seed, groups) gives byte-identical files with the same pillow,
  numpy and zlib builds (set.json records them);
- the first k examples of a set of n are the set of k;
- sets with a different name or seed share no image (a collision inside a set is
  re-drawn; collisions across sets are checked by scripts/generate_builtin_sets.py
  and the tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from lrcal.calsets.format import (
    MANIFEST_NAME,
    SET_INFO_NAME,
    TASK_GROUPS,
    CalibrationSet,
    Example,
    SetError,
    set_name_problem,
)
from lrcal.calsets.gen import chart, document, math_tasks, ocr, spatial, vqa
from lrcal.calsets.gen.render import Ctx, Item, Redraw
from lrcal.calsets.loader import compute_version

GENERATOR_VERSION = 1

SUBTYPES: dict[str, dict[str, Callable[[Ctx], Item]]] = {
    "ocr": ocr.SUBTYPES,
    "chart": chart.SUBTYPES,
    "document": document.SUBTYPES,
    "spatial": spatial.SUBTYPES,
    "vqa": vqa.SUBTYPES,
    "math": math_tasks.SUBTYPES,
}

# Seeds of the built-in sets (documented in docs/calibration-sets.md). The training set
# is generated at run time by the demo and must stay disjoint from the committed ones.
BUILTIN_SEEDS = {"builtin-v1": 1, "builtin-v1-holdout": 2, "builtin-v1-train": 3, "builtin-v1-pool": 4}
BUILTIN_SIZES = {"builtin-v1": 128, "builtin-v1-quick": 64, "builtin-v1-holdout": 144, "builtin-v1-train": 1000,
                 "builtin-v1-pool": 512}
TRAIN_SET_NAME = "builtin-v1-train"
# the candidate pool of adaptive calibration (`lrcal calibrate --adaptive`): larger than any
# budget, so the sampler has a choice; disjoint from the live-validation holdout
POOL_SET_NAME = "builtin-v1-pool"

MAX_EXAMPLES = 100_000
MAX_ATTEMPTS = 20
PNG_COMPRESS_LEVEL = 3  # level 6 saves ~20% bytes but costs ~1.6 ms per image
PALETTE_COLOURS = 256


@dataclass(frozen=True)
class GeneratedExample:
    record: dict  # the manifest line
    png: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()


def _derive(*parts: object) -> int:
    key = "|".join(str(p) for p in ("lrcal-gen-v1", *parts))
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def _subtype_for(name: str, seed: int, group: str, j: int) -> str:
    names = list(SUBTYPES[group])
    offset = _derive(name, seed, group, "offset") % len(names)
    return names[(j + offset) % len(names)]


def encode_png(image) -> bytes:
    """PNG with an adaptive palette of up to 256 colours (no dithering): the images are
    flat synthetic drawings, so this keeps them small and quick to encode."""
    from PIL import Image

    if image.mode == "RGB":
        image = image.quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def check_arguments(name: str, n: int, seed: int, groups: Sequence[str]) -> tuple[str, ...]:
    problem = set_name_problem(name)
    if problem:
        raise SetError(problem)
    if not 1 <= n <= MAX_EXAMPLES:
        raise SetError(f"--n must be between 1 and {MAX_EXAMPLES:,}, got {n}")
    if seed < 0:
        raise SetError(f"--seed must be >= 0, got {seed}")
    groups = tuple(groups)
    unknown = [g for g in groups if g not in SUBTYPES]
    if unknown or not groups:
        raise SetError(f"unknown task groups {', '.join(unknown) or '(none given)'}; choose from {', '.join(TASK_GROUPS)}")
    if len(set(groups)) != len(groups):
        raise SetError("task groups are repeated")
    return groups


def generate_examples(
    name: str, n: int, seed: int, groups: Sequence[str] = TASK_GROUPS
) -> Iterator[GeneratedExample]:
    """The set's examples in manifest order (images as PNG bytes), nothing written."""
    groups = check_arguments(name, n, seed, groups)
    seen_images: set[bytes] = set()
    for i in range(n):
        group = groups[i % len(groups)]
        subtype = _subtype_for(name, seed, group, i // len(groups))
        example_id = f"{name}-{group}-{i:04d}"
        for attempt in range(MAX_ATTEMPTS):
            state = _derive(name, seed, i, attempt)
            rng = random.Random(state)
            ctx = Ctx(rng, np.random.default_rng(state), level=rng.random())
            try:
                item = SUBTYPES[group][subtype](ctx)
            except Redraw:
                continue
            png = encode_png(item.image)
            digest = hashlib.sha256(png).digest()
            if digest not in seen_images:
                seen_images.add(digest)
                break
        else:  # pragma: no cover - would need 20 identical images in a row
            raise SetError(f"could not draw a unique image for example {example_id}")
        example = Example(
            example_id,
            group,
            item.question,
            item.answer,
            item.answer_type,
            choices=None if item.choices is None else tuple(item.choices),
            image=f"images/{example_id}.png",
            tolerance=None if item.tolerance is None else float(item.tolerance),
            meta={"difficulty": item.difficulty, "subtype": subtype},
        )
        yield GeneratedExample(example.to_manifest_dict(), png)


def manifest_line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def provenance() -> dict:
    """The builds whose output the generator's bytes depend on."""
    import PIL
    from PIL import features

    return {
        "generator_version": GENERATOR_VERSION,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "zlib": features.version("zlib"),
        "freetype2": features.version("freetype2"),
    }


def set_info(name: str, description: str, groups: Sequence[str], generator: dict | None = None) -> dict:
    info: dict = {"name": name, "description": description, "task_groups": list(groups)}
    if generator:
        info["generator"] = generator
    return info


def write_set_dir(
    out_dir: Path,
    info: dict,
    entries: Sequence[tuple[dict, bytes]],
    overwrite: bool = False,
) -> CalibrationSet:
    """Write manifest, set.json and images into a temporary sibling, then move it into place
    (a failure leaves ``out_dir`` as it was)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SetError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise SetError(f"{out_dir} is not empty (use --force to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (staging / "images").mkdir()
        manifest = hashlib.sha256()
        digests: dict[str, bytes] = {}
        examples: list[Example] = []
        with open(staging / MANIFEST_NAME, "wb") as handle:
            for line_no, (record, png) in enumerate(entries, 1):
                line = manifest_line(record)
                handle.write(line)
                manifest.update(line)
                (staging / record["image"]).write_bytes(png)
                digest = hashlib.sha256(png).digest()
                digests[record["image"]] = digest
                examples.append(_example(record, out_dir, digest.hex(), line_no))
        (staging / SET_INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    real = out_dir.resolve()
    examples = [
        Example(**{**e.__dict__, "image_path": real / e.image}) for e in examples  # type: ignore[arg-type]
    ]
    groups = tuple(g for g in info["task_groups"] if any(e.task_group == g for e in examples))
    return CalibrationSet(
        name=info["name"],
        path=real,
        version=compute_version(manifest.digest(), digests),
        examples=tuple(examples),
        task_groups=groups,
        description=info.get("description"),
    )


def _example(record: dict, out_dir: Path, sha: str, line: int) -> Example:
    return Example(
        id=record["id"],
        task_group=record["task_group"],
        question=record["question"],
        answer=record["answer"],
        answer_type=record["answer_type"],
        choices=tuple(record["choices"]) if "choices" in record else None,
        image=record["image"],
        tolerance=record.get("tolerance"),
        meta=dict(record.get("meta") or {}),
        image_path=out_dir / record["image"],
        image_sha256=sha,
        line=line,
    )


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    if out_dir.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
        try:
            os.replace(staging, out_dir)
        except BaseException:
            os.replace(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out_dir)


def generate_set(
    out_dir: str | os.PathLike[str],
    name: str,
    n: int,
    seed: int,
    groups: Sequence[str] = TASK_GROUPS,
    *,
    overwrite: bool = False,
) -> CalibrationSet:
    """Generate a set of ``n`` examples into ``out_dir`` (refused when it is not empty,
    unless ``overwrite``) and return it as loaded."""
    groups = check_arguments(name, n, seed, groups)
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SetError(f"{out} is not empty (use --force to replace it)")
    entries = [(g.record, g.png) for g in generate_examples(name, n, seed, groups)]
    info = set_info(
        name,
        f"Synthetic calibration set generated by lrcal.calsets.generator (n={n}, seed={seed}).",
        groups,
        {**provenance(), "n": n, "seed": seed},
    )
    return write_set_dir(out, info, entries, overwrite=overwrite)


def generate_train_set(out_dir: str | os.PathLike[str], n: int | None = None, *, overwrite: bool = False) -> CalibrationSet:
    """The demo's training set: same generator, its own seed, disjoint from the committed sets."""
    return generate_set(
        out_dir,
        TRAIN_SET_NAME,
        n or BUILTIN_SIZES[TRAIN_SET_NAME],
        BUILTIN_SEEDS[TRAIN_SET_NAME],
        overwrite=overwrite,
    )
