"""The simulated model zoo: skill profiles, latency and token distributions, prices.

A zoo is a JSON file (``default_zoo.json`` ships with lrcal; ``--zoo PATH.json`` loads
another). Every number in it is a *design choice* for demos and tests, not a measurement
of any real model. docs/simulator.md describes the format and the default zoo.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lrcal.errors import LrcalError
from lrcal.input_files import read_input_bytes

DEFAULT_ZOO_PATH = Path(__file__).with_name("default_zoo.json")
TASK_GROUPS = ("ocr", "chart", "document", "spatial", "vqa", "math")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")
MAX_ZOO_BYTES = 1 << 20


class ZooError(LrcalError):
    """A zoo file that cannot be used (one line, naming the file and the field)."""


@dataclass(frozen=True)
class SimModel:
    name: str
    role: str
    skills: Mapping[str, float]  # task group -> accuracy on an example of difficulty 0.5
    subtype_skill: Mapping[str, float] = field(default_factory=dict)  # "group/subtype" or subtype -> accuracy delta
    ttft_ms: float = 50.0  # median time to first token at latency scale 1
    ms_per_output_token: float = 1.0
    latency_spread: float = 0.2  # sigma of the log-normal jitter on ttft and per-token time
    output_tokens_median: float = 60.0
    output_tokens_spread: float = 0.3  # sigma of the log-normal output-token distribution
    image_input_tokens: int = 765
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    max_concurrency: int = 8  # a suggestion for `lrcal add-model --max-concurrency`
    shares_draws_with: str | None = None  # a degraded copy: uses that model's random draws

    @property
    def draw_name(self) -> str:
        """Whose random draws (correctness, tokens, latency jitter) this model uses."""
        return self.shares_draws_with or self.name

    def skill(self, group: str | None, subtype: str | None = None, default: float = 0.5) -> float:
        """Accuracy at difficulty 0.5 on ``group`` (and ``subtype``), clipped to [0.01, 0.99]."""
        value = self.skills.get(group, default) if group is not None else default
        if subtype is not None:  # "group/subtype" keys first, then bare subtype names
            value += self.subtype_skill.get(f"{group}/{subtype}", self.subtype_skill.get(subtype, 0.0))
        return min(0.99, max(0.01, value))

    @property
    def median_latency_ms(self) -> float:
        """Median end-to-end latency at latency scale 1 (ttft + median tokens x per-token time)."""
        return self.ttft_ms + self.output_tokens_median * self.ms_per_output_token

    def median_cost_usd(self, input_tokens: int = 1000) -> float:
        return (input_tokens * self.price_in_per_mtok + self.output_tokens_median * self.price_out_per_mtok) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "skills": dict(self.skills),
            "subtype_skill": dict(self.subtype_skill),
            "latency": {"ttft_ms": self.ttft_ms, "ms_per_output_token": self.ms_per_output_token, "spread": self.latency_spread},
            "median_latency_ms": round(self.median_latency_ms, 1),
            "output_tokens": {"median": self.output_tokens_median, "spread": self.output_tokens_spread},
            "image_input_tokens": self.image_input_tokens,
            "price_in_per_mtok": self.price_in_per_mtok,
            "price_out_per_mtok": self.price_out_per_mtok,
            "max_concurrency": self.max_concurrency,
            "shares_draws_with": self.shares_draws_with,
            "simulated": True,
        }


@dataclass(frozen=True)
class Zoo:
    name: str
    description: str
    models: tuple[SimModel, ...]
    difficulty_slope: float = 2.5  # logit change between difficulty 0.5 and 0 (or 1) is slope/2
    default_skill: float = 0.5  # for task groups a model does not list
    error_correlation: float = 0.35  # share of the latent correctness draw common to all models
    source: str = "default"

    def model(self, name: str) -> SimModel:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "simulated": True,
            "difficulty_slope": self.difficulty_slope,
            "default_skill": self.default_skill,
            "error_correlation": self.error_correlation,
            "models": [m.to_dict() for m in self.models],
        }


def load_zoo(path_or_default: str | Path | None = "default") -> Zoo:
    """``"default"`` (or None) for the built-in zoo, else a path to a zoo JSON file."""
    if path_or_default is None or str(path_or_default) == "default":
        path, source = DEFAULT_ZOO_PATH, "default"
    else:
        path = Path(path_or_default).expanduser()
        source = str(path)
    raw = read_input_bytes(path, "zoo file", max_bytes=MAX_ZOO_BYTES, error=ZooError)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ZooError(f"{path}: zoo file is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ZooError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return zoo_from_dict(data, where=str(path), source=source)


def zoo_from_dict(data: Any, where: str = "zoo", source: str = "inline") -> Zoo:
    if not isinstance(data, dict):
        raise ZooError(f"{where}: a zoo is a JSON object with a 'models' list")
    models_raw = data.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise ZooError(f"{where}: 'models' must be a non-empty list")
    models = [_model(item, f"{where}: models[{i}]") for i, item in enumerate(models_raw)]
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ZooError(f"{where}: duplicate model name '{model.name}'")
        seen.add(model.name)
    by_name = {m.name: m for m in models}
    for model in models:
        other = model.shares_draws_with
        if other is not None and (other not in by_name or other == model.name or by_name[other].shares_draws_with):
            raise ZooError(
                f"{where}: {model.name}: 'shares_draws_with' must name another model of the zoo "
                "that does not itself share draws"
            )
    return Zoo(
        name=_text(data.get("name", "custom"), f"{where}: name"),
        description=_text(data.get("description", ""), f"{where}: description", allow_empty=True),
        models=tuple(models),
        difficulty_slope=_number(data.get("difficulty_slope", 2.5), f"{where}: difficulty_slope", 0.0, 20.0),
        default_skill=_number(data.get("default_skill", 0.5), f"{where}: default_skill", 0.0, 1.0),
        error_correlation=_number(data.get("error_correlation", 0.35), f"{where}: error_correlation", 0.0, 1.0),
        source=source,
    )


def _model(item: Any, where: str) -> SimModel:
    if not isinstance(item, dict):
        raise ZooError(f"{where}: each model is a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ZooError(f"{where}: 'name' must be 1-80 characters of letters, digits, '.', '_', ':' or '-'")
    where = f"{where} ({name})"
    skills = item.get("skills")
    if not isinstance(skills, dict) or not skills:
        raise ZooError(f"{where}: 'skills' must map task groups to accuracies in [0, 1]")
    latency = item.get("latency", {})
    tokens = item.get("output_tokens", {})
    if not isinstance(latency, dict) or not isinstance(tokens, dict):
        raise ZooError(f"{where}: 'latency' and 'output_tokens' must be objects")
    subtype_skill = item.get("subtype_skill", {})
    if not isinstance(subtype_skill, dict):
        raise ZooError(f"{where}: 'subtype_skill' must map subtypes to accuracy deltas")
    concurrency = item.get("max_concurrency", 8)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ZooError(f"{where}: 'max_concurrency' must be a positive integer")
    return SimModel(
        name=name,
        role=_text(item.get("role", ""), f"{where}: role", allow_empty=True),
        skills={str(g): _number(v, f"{where}: skills.{g}", 0.0, 1.0) for g, v in skills.items()},
        subtype_skill={str(s): _number(v, f"{where}: subtype_skill.{s}", -1.0, 1.0) for s, v in subtype_skill.items()},
        ttft_ms=_number(latency.get("ttft_ms", 50.0), f"{where}: latency.ttft_ms", 0.0, 600_000.0),
        ms_per_output_token=_number(latency.get("ms_per_output_token", 1.0), f"{where}: latency.ms_per_output_token", 0.0, 10_000.0),
        latency_spread=_number(latency.get("spread", 0.2), f"{where}: latency.spread", 0.0, 3.0),
        output_tokens_median=_number(tokens.get("median", 60.0), f"{where}: output_tokens.median", 1.0, 100_000.0),
        output_tokens_spread=_number(tokens.get("spread", 0.3), f"{where}: output_tokens.spread", 0.0, 3.0),
        image_input_tokens=int(_number(item.get("image_input_tokens", 765), f"{where}: image_input_tokens", 0.0, 1e6)),
        price_in_per_mtok=_number(item.get("price_in_per_mtok", 0.0), f"{where}: price_in_per_mtok", 0.0, 1e6),
        price_out_per_mtok=_number(item.get("price_out_per_mtok", 0.0), f"{where}: price_out_per_mtok", 0.0, 1e6),
        max_concurrency=concurrency,
        shares_draws_with=_optional_name(item.get("shares_draws_with"), f"{where}: shares_draws_with"),
    )


def _optional_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise ZooError(f"{where} must be a model name")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ZooError(f"{where} must be a number")
    if not low <= value <= high:
        raise ZooError(f"{where} must be between {low:g} and {high:g} (got {value:g})")
    return float(value)


def _text(value: Any, where: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ZooError(f"{where} must be a {'string' if allow_empty else 'non-empty string'}")
    return value
