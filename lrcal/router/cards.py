"""`ModelCard`: one model in the router's token bank, and its two serialized forms.

* tensors (`card_to_tensors` / `card_from_tensors`): the token bank inside ``router.pt``; the
  card's scalars (rows, source, expected cost/latency/tokens) go to the sidecar as its
  `ModelCard.summary`;
* JSON text (`card_to_json` / `card_from_json`): an onboarded token as the store keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from lrcal.router.profiles import task_rows_from_profiles


@dataclass
class ModelCard:
    """One model in the token bank. ``residuals`` holds one [H] vector per ensemble member
    (None: a profile-only token, e.g. a model not fitted yet)."""

    name: str
    profile: np.ndarray  # [P]
    task_accuracy: np.ndarray  # [V + 1], last = overall
    n_rows: int
    residuals: list[np.ndarray] | None = None
    source: str = "trained"  # trained | profile | onboarded
    # [V + 1] per-task offsets on the quality logit (onboarding's level calibration; None = zeros)
    task_bias: np.ndarray | None = None
    expected_output_tokens: float | None = None
    expected_latency_ms: float | None = None
    expected_cost_usd: float | None = None
    # [V + 1] unsmoothed per-task mean outcomes from the router's training rows: the per-task
    # default's level (`DecisionRule.per_task_from_outcomes`). None (a model onboarded from a
    # few calibration rows): its smoothed ``task_accuracy``, which is what the profile prior's
    # strength was chosen for.
    decision_accuracy: np.ndarray | None = None
    # [D + 1] the model's linear head on the router's query features (last: bias), blended with
    # the network's score at the decision rule's ``linear_weight`` (`lrcal.router.linear_head`).
    # None: the network's score alone (a model onboarded from a few calibration rows).
    linear: np.ndarray | None = None
    # [V + 1] the model's outcomes per task in the router's training rows (last: all of them).
    # Where fewer than `MIN_DECISION_ROWS`, its quality on that task counts as about zero in
    # every decision (`lrcal.router.policy.decision_scores`). None (a model onboarded from
    # calibration rows; an artifact written before reads them from its profile): not known.
    task_rows: np.ndarray | None = None

    def decision_level(self) -> np.ndarray:
        """[V + 1] the per-task default's level of this model."""
        return self.task_accuracy if self.decision_accuracy is None else self.decision_accuracy

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "n_rows": int(self.n_rows),
            "overall_accuracy": float(self.task_accuracy[-1]),
            "expected_output_tokens": self.expected_output_tokens,
            "expected_latency_ms": self.expected_latency_ms,
            "expected_cost_usd": self.expected_cost_usd,
        }


def card_problem(card: ModelCard, *, profile_dim: int, tasks: int, members: int, hidden: int,
                 feature_dim: int) -> str | None:
    """What makes ``card`` unfit for a router (None: nothing) -- the one check behind
    `Router.add_model` and the artifact loader. ``tasks``: the task vocabulary's size;
    ``feature_dim``: the query features' width. Arrays that become tokens or scores must be
    finite: a NaN there would route silently wrong rather than fail."""

    def bad(values, shape) -> bool:
        return np.shape(values) != shape or not np.isfinite(np.asarray(values, dtype=np.float64)).all()

    levels = (tasks + 1,)
    if bad(card.profile, (profile_dim,)):
        return "a profile of the wrong shape (or not finite)"
    if np.shape(card.task_accuracy) != levels:
        return "task accuracies of the wrong shape"
    if card.residuals is not None and len(card.residuals) != members:
        return f"{len(card.residuals)} residuals, the router has {members} members"
    if card.residuals is not None and any(bad(r, (hidden,)) for r in card.residuals):
        return "a residual of the wrong shape (or not finite)"
    if card.task_bias is not None and bad(card.task_bias, levels):
        return "a task bias of the wrong shape (or not finite)"
    if card.decision_accuracy is not None and np.shape(card.decision_accuracy) != levels:
        return "per-task outcomes of the wrong shape"
    if card.linear is not None and bad(card.linear, (feature_dim + 1,)):
        return "a linear head of the wrong shape (or not finite)"
    if card.task_rows is not None and (bad(card.task_rows, levels) or np.any(np.asarray(card.task_rows) < 0)):
        return "per-task outcome counts of the wrong shape (or not finite, or negative)"
    return None


# ---- tensors (the artifact's token bank) ------------------------------------------------------


def card_to_tensors(card: ModelCard) -> dict:
    """The card's arrays as float32 tensors (residuals stacked [E, H]; absent ones None)."""
    return {
        "profile": torch.as_tensor(card.profile, dtype=torch.float32),
        "task_accuracy": torch.as_tensor(card.task_accuracy, dtype=torch.float32),
        "residuals": (torch.as_tensor(np.stack(card.residuals), dtype=torch.float32)
                      if card.residuals is not None else None),
        "task_bias": (torch.as_tensor(card.task_bias, dtype=torch.float32)
                      if card.task_bias is not None else None),
        "decision_accuracy": (torch.as_tensor(card.decision_accuracy, dtype=torch.float64)
                              if card.decision_accuracy is not None else None),
        "linear": torch.as_tensor(card.linear, dtype=torch.float32) if card.linear is not None else None,
        "task_rows": (torch.as_tensor(card.task_rows, dtype=torch.float64)
                      if card.task_rows is not None else None),
    }


def card_from_tensors(name: str, entry: dict, summary: dict) -> ModelCard:
    """The card back from `card_to_tensors`' entry and its sidecar ``summary`` (may be empty).
    A malformed entry raises KeyError, AttributeError or TypeError; shapes are not checked here."""
    profile = entry["profile"].numpy().astype(np.float32)
    task_accuracy = entry["task_accuracy"].numpy().astype(np.float32)
    residuals = entry["residuals"]
    bias = entry.get("task_bias")  # absent in artifacts written before the margin calibration
    decision = entry.get("decision_accuracy")  # absent before the exact per-task default
    linear = entry.get("linear")  # absent before the linear heads
    task_rows = entry.get("task_rows")  # absent before the measured-task check
    source = str(summary.get("source", "trained"))
    if task_rows is None and source in ("trained", "profile"):
        # an older artifact: a card of the training rows carries their counts in its profile
        task_rows = torch.as_tensor(task_rows_from_profiles(profile), dtype=torch.float64)
    return ModelCard(
        name=name,
        profile=profile,
        task_accuracy=task_accuracy,
        n_rows=int(summary.get("n_rows", 0)),
        residuals=[r.numpy().astype(np.float32) for r in residuals] if residuals is not None else None,
        task_bias=bias.numpy().astype(np.float32) if bias is not None else None,
        decision_accuracy=decision.numpy().astype(np.float64) if decision is not None else None,
        linear=linear.numpy().astype(np.float32) if linear is not None else None,
        task_rows=task_rows.numpy().astype(np.float64) if task_rows is not None else None,
        source=source,
        expected_output_tokens=summary.get("expected_output_tokens"),
        expected_latency_ms=summary.get("expected_latency_ms"),
        expected_cost_usd=summary.get("expected_cost_usd"),
    )


# ---- JSON (an onboarded token in the store) ---------------------------------------------------


def card_to_json(card: ModelCard) -> str:
    return json.dumps(
        {
            "profile": np.asarray(card.profile).tolist(),
            "task_accuracy": np.asarray(card.task_accuracy).tolist(),
            "n_rows": int(card.n_rows),
            "residuals": None if card.residuals is None else [np.asarray(r).tolist() for r in card.residuals],
            "task_bias": None if card.task_bias is None else np.asarray(card.task_bias).tolist(),
            "decision_accuracy": (None if card.decision_accuracy is None
                                  else np.asarray(card.decision_accuracy, dtype=np.float64).tolist()),
            "linear": None if card.linear is None else np.asarray(card.linear, dtype=np.float64).tolist(),
            "task_rows": None if card.task_rows is None else np.asarray(card.task_rows, dtype=np.float64).tolist(),
            "source": card.source,
            "expected_output_tokens": card.expected_output_tokens,
            "expected_latency_ms": card.expected_latency_ms,
            "expected_cost_usd": card.expected_cost_usd,
        }
    )


def card_from_json(name: str, text: str) -> ModelCard:
    data = json.loads(text)
    return ModelCard(
        name=name,
        profile=np.asarray(data["profile"], dtype=np.float32),
        task_accuracy=np.asarray(data["task_accuracy"], dtype=np.float32),
        n_rows=int(data["n_rows"]),
        residuals=None if data["residuals"] is None else [np.asarray(r, dtype=np.float32) for r in data["residuals"]],
        task_bias=None if data.get("task_bias") is None else np.asarray(data["task_bias"], dtype=np.float32),
        decision_accuracy=(None if data.get("decision_accuracy") is None
                           else np.asarray(data["decision_accuracy"], dtype=np.float64)),
        linear=None if data.get("linear") is None else np.asarray(data["linear"], dtype=np.float32),
        task_rows=None if data.get("task_rows") is None else np.asarray(data["task_rows"], dtype=np.float64),
        source=data.get("source", "onboarded"),
        expected_output_tokens=data.get("expected_output_tokens"),
        expected_latency_ms=data.get("expected_latency_ms"),
        expected_cost_usd=data.get("expected_cost_usd"),
    )
