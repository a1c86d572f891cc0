"""How a simulated model behaves on one request: right or wrong, what it says, how long it
takes and how many tokens it uses. Deterministic given (seed, model, request content).

Correctness on a known example: with ``s`` the model's skill on the example's task group
(plus its subtype modifier) and ``d`` the example's difficulty in [0, 1],

    p = sigmoid(logit(s) + slope * (0.5 - d))

and the model is right iff ``u < p``, where ``u`` is uniform and deterministic in (seed,
model, example content): the same model, example and seed always give the same verdict,
whichever set the example was loaded from. ``u = Phi(sqrt(rho) z_example +
sqrt(1 - rho) z_model_example)`` (a Gaussian copula): models' errors are correlated by
``rho = zoo.error_correlation`` beyond what difficulty explains, as real models' are. A model
with ``shares_draws_with`` uses another model's draws: with lower skill everywhere it is
right only where that model is right, and slower and pricier on every request.
"""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

from lrcal.serve import Answer
from lrcal.sim.answers import GENERIC_ANSWERS, phrase, wrong_answer
from lrcal.sim.draws import lognormal_factor, unit
from lrcal.sim.index import ExampleIndex, SimExample, content_key
from lrcal.sim.zoo import SimModel, Zoo

CHARS_PER_TOKEN = 4.0
PROMPT_OVERHEAD_TOKENS = 10  # the chat template around the user's text
FIXED_TTFT_SHARE = 0.3  # with --fixed-latency-ms, the first token comes at 30% of the latency


_NORMAL = NormalDist()


def _open_unit(u: float) -> float:
    return min(max(u, 1e-12), 1.0 - 1e-12)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class SimBackend:
    """The ``lrcal.serve.Backend`` of the simulated zoo."""

    owned_by = "lrcal-simulated"

    def __init__(
        self,
        zoo: Zoo,
        index: ExampleIndex,
        *,
        seed: int = 0,
        latency_scale: float = 1.0,
        fixed_latency_ms: float | None = None,
    ) -> None:
        if latency_scale < 0:
            raise ValueError("latency scale must be >= 0")
        self.zoo = zoo
        self.index = index
        self.seed = seed
        self.latency_scale = latency_scale
        self.fixed_latency_ms = fixed_latency_ms
        self._models = {m.name: m for m in zoo.models}

    def model_names(self) -> list[str]:
        return list(self._models)

    def recognize(self, question: str, image_sha256: str | None) -> SimExample | None:
        return self.index.lookup(question, image_sha256)

    # -- correctness
    def correct_probability(self, model: str | SimModel, example: SimExample) -> float:
        sim_model = self._models[model] if isinstance(model, str) else model
        skill = sim_model.skill(example.task_group, example.subtype, self.zoo.default_skill)
        return _sigmoid(_logit(skill) + self.zoo.difficulty_slope * (0.5 - example.difficulty))

    def correctness_draw(self, model: str, example: SimExample) -> float:
        """The uniform ``u`` compared with the correctness probability (see module doc)."""
        rho = self.zoo.error_correlation
        shared = _NORMAL.inv_cdf(_open_unit(unit(self.seed, example.key, "shared")))
        own = _NORMAL.inv_cdf(_open_unit(unit(self.seed, self._models[model].draw_name, example.key, "correct")))
        return _NORMAL.cdf(math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * own)

    def is_correct(self, model: str, example: SimExample) -> bool:
        return self.correctness_draw(model, example) < self.correct_probability(model, example)

    def answer_text(self, model: str, example: SimExample | None, question: str, image_sha256: str | None) -> str:
        if example is None:
            key = content_key(image_sha256, question)
            return GENERIC_ANSWERS[int(unit(self.seed, model, key, "generic") * len(GENERIC_ANSWERS))]
        draw_key = (self.seed, model, example.key)
        if self.is_correct(model, example):
            value = example.answer
        else:
            value = wrong_answer(example, self.index.other_answers(example), draw_key)
        return phrase(example, value, draw_key)

    # -- the Backend interface
    def answer(self, model: str, question: str, image_bytes: bytes | None) -> Answer:
        sim_model = self._models[model]
        sha = hashlib.sha256(image_bytes).hexdigest() if image_bytes is not None else None
        example = self.recognize(question, sha)
        text = self.answer_text(model, example, question, sha)
        key = content_key(sha, question)
        output_tokens = self.output_tokens(sim_model, key, text)
        input_tokens = (
            math.ceil(len(question) / CHARS_PER_TOKEN)
            + PROMPT_OVERHEAD_TOKENS
            + (sim_model.image_input_tokens if image_bytes is not None else 0)
        )
        ttft_s, total_s = self.timing(sim_model, key, output_tokens)
        return Answer(text, input_tokens, output_tokens, ttft_s, total_s)

    def output_tokens(self, model: SimModel, key: str, text: str) -> int:
        """Drawn from the model's log-normal (its reasoning is billed even if not shown),
        never fewer than the visible answer needs."""
        drawn = model.output_tokens_median * lognormal_factor(model.output_tokens_spread, self.seed, model.draw_name, key, "tokens")
        visible = math.ceil(len(text) / CHARS_PER_TOKEN)
        return int(min(100_000, max(visible, round(drawn), 1)))

    def timing(self, model: SimModel, key: str, output_tokens: int) -> tuple[float, float]:
        """(time to first token, total) in seconds; latency grows with output tokens."""
        if self.fixed_latency_ms is not None:
            total = self.fixed_latency_ms / 1000.0
            return total * FIXED_TTFT_SHARE, total
        scale = self.latency_scale / 1000.0
        ttft = model.ttft_ms * lognormal_factor(model.latency_spread, self.seed, model.draw_name, key, "ttft") * scale
        per_token = (
            model.ms_per_output_token
            * lognormal_factor(model.latency_spread / 2, self.seed, model.draw_name, key, "per-token")
            * scale
        )
        return ttft, ttft + output_tokens * per_token

    def expected_accuracy(self, model: str, examples: list[SimExample]) -> float:
        """Mean correctness probability over ``examples`` (what a large sample would show)."""
        if not examples:
            return float("nan")
        return sum(self.correct_probability(model, ex) for ex in examples) / len(examples)
