"""The per-model linear heads: the blend weight is chosen out of fold (0 when the heads add
nothing), every path that scores queries blends them the same way, and they survive the
artifact and the store's JSON."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from lrcal.errors import LrcalError, UsageError
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.features import fit_feature_spec
from lrcal.router import RouterConfig, RouterData, train_router
from lrcal.router.artifacts import load_router, save_router
from lrcal.router.cards import card_from_json, card_to_json
from lrcal.router.linear_head import blend, choose_blend, fit_linear_heads, head_probabilities, log_loss
from lrcal.router.policy import DecisionRule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the heads are opt-in (RouterConfig.linear_head, off by default: docs/router.md says why)
FAST = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=200,
                    warmup_patience=8, latent_max_steps=40, patience=2, batch_size=64, linear_head=True)


def _world(n=4000, k=5, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.1, 0.9, (n, k))
    y = (rng.random((n, k)) < truth).astype(float)
    return rng, truth, y


def test_the_blend_weight_is_zero_when_the_heads_are_noise_and_large_when_they_know_more():
    rng, truth, y = _world()
    network = np.clip(truth + rng.normal(0, 0.03, truth.shape), 0.01, 0.99)
    noise = rng.uniform(0.1, 0.9, truth.shape)
    assert choose_blend(network, {1e-3: noise}, y).weight == 0.0
    # the network knows only each model's level; the heads know each query
    level = np.broadcast_to(truth.mean(axis=0), truth.shape).copy()
    choice = choose_blend(level, {1e-3: noise, 1e-2: truth}, y)
    assert choice.l2 == 1e-2 and choice.weight >= 0.8
    assert choice.evidence["blend_log_loss"] < choice.evidence["network_log_loss"]
    # the blend at weight 0 is the network; in between it lies between the two in logit space
    np.testing.assert_array_equal(blend(level, truth, 0.0), level)
    mid = blend(np.full((1, 1), 0.2), np.full((1, 1), 0.8), 0.5)
    assert abs(float(mid[0, 0]) - 0.5) < 1e-9


def test_linear_heads_fit_a_per_query_signal_and_skip_missing_outcomes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 6)).astype(np.float32)
    p = 1 / (1 + np.exp(-(2.0 * X[:, [0, 1]] + np.array([0.0, -0.5]))))
    y = (rng.random(p.shape) < p).astype(float)
    y[rng.random(y.shape) < 0.3] = np.nan  # not run
    heads = fit_linear_heads(X, y, 1e-4)
    assert heads.shape == (7, 2)
    assert heads[0, 0] > 1.5 and abs(heads[1, 0]) < 0.3 and heads[1, 1] > 1.5
    assert log_loss(head_probabilities(X, heads), y) < log_loss(np.full_like(p, 0.5), y) - 0.1


@pytest.fixture(scope="module")
def keyword_router():
    """A router on outcomes with a strong per-query (keyword) effect, which linear heads fit."""
    torch.set_num_threads(1)
    table = synthetic_outcomes(n=480, n_models=4, seed=5, keyword_bonus=0.45)
    spec = fit_feature_spec(table.tasks, table.metadata)
    data = RouterData.from_table(table, spec)
    return train_router(data, spec, FAST, seed=0, ensemble=2), data


def test_a_trained_router_blends_its_heads_and_every_scoring_path_agrees(keyword_router, tmp_path):
    router, data = keyword_router
    rule = router.decision_rule
    evidence = rule.evidence["linear_head"]
    assert rule.linear_weight > 0.0 and rule.linear_l2 is not None, evidence
    assert evidence["blend_log_loss"] <= evidence["network_log_loss"]
    assert all(card.linear is not None and card.linear.shape == (router.spec.dim + 1,) for card in router.cards.values())
    X = data.X[:40]
    pred = router.predict(X)
    # the blend moved the scores off the networks' own
    router.decision_rule, kept = DecisionRule(**{**rule.__dict__, "linear_weight": 0.0}), rule
    plain = router.predict(X)
    router.decision_rule = kept
    assert np.abs(pred.mu - plain.mu).max() > 1e-3
    heads = np.stack([router.cards[m].linear for m in router.models], axis=1)
    np.testing.assert_allclose(pred.mu, blend(plain.mu, head_probabilities(X, heads), rule.linear_weight), atol=1e-6)
    # the gateway's per-pool scorer
    from lrcal.gateway.routing import PoolScorer

    fast = PoolScorer(router, router.models).predict(X)
    for key in ("mu", "score", "network_score"):
        np.testing.assert_allclose(fast[key], getattr(pred, key), atol=1e-5)
    # the artifact
    save_router(router, tmp_path / "r")
    loaded = load_router(tmp_path / "r")
    assert loaded.decision_rule.linear_weight == rule.linear_weight
    np.testing.assert_allclose(loaded.predict(X).score, pred.score, atol=1e-6)


def test_a_model_without_a_head_keeps_the_network_score(keyword_router):
    router, data = keyword_router
    name = router.models[0]
    X = data.X[:30]
    before = router.predict(X).mu
    card = router.cards[name]
    head, card.linear = card.linear, None
    try:
        after = router.predict(X).mu
        router.decision_rule, rule = DecisionRule(**{**router.decision_rule.__dict__, "linear_weight": 0.0}), router.decision_rule
        network = router.predict(X).mu
        router.decision_rule = rule
    finally:
        card.linear = head
    np.testing.assert_allclose(after[:, 0], network[:, 0], atol=1e-7)  # no head: the network's
    np.testing.assert_allclose(after[:, 1:], before[:, 1:], atol=1e-7)  # each model depends on its own head only


def test_heads_survive_the_store_json_and_bad_ones_are_refused(keyword_router, tmp_path):
    router, _ = keyword_router
    name = router.models[1]
    card = router.cards[name]
    back = card_from_json(name, card_to_json(card))
    np.testing.assert_allclose(back.linear, card.linear, atol=1e-6)
    wrong = card_from_json(name, card_to_json(card))
    wrong.linear = wrong.linear[:-1]
    with pytest.raises(LrcalError, match="linear head of the wrong shape"):
        router.add_model(wrong)
    # an artifact whose head has the wrong shape is refused when loaded
    save_router(router, tmp_path / "r")
    payload = torch.load(tmp_path / "r" / "router.pt", weights_only=False)
    payload["cards"][name]["linear"] = torch.zeros(3)
    torch.save(payload, tmp_path / "r" / "router.pt")
    sidecar_path = tmp_path / "r" / "router.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["weights_sha256"] = hashlib.sha256((tmp_path / "r" / "router.pt").read_bytes()).hexdigest()
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(LrcalError, match="wrong shape"):
        load_router(tmp_path / "r")


@pytest.mark.parametrize("bad", [{"linear_weight": 1.5}, {"linear_weight": "x"}, {"linear_weight": float("nan")},
                                 {"linear_l2": -1.0}])
def test_a_rule_with_a_bad_blend_is_refused(bad):
    with pytest.raises(UsageError):
        DecisionRule.from_dict({"overall": 1, "task": 1, "query": 1, **bad})
    # rules written before the heads read as the network alone
    assert DecisionRule.from_dict({"overall": 1, "task": 1, "query": 1}).linear_weight == 0.0


def test_the_heads_are_off_by_default_and_then_change_nothing():
    """Default routers decide on the network alone (the heads cost onboarded models: docs/router.md)."""
    assert RouterConfig().linear_head is False
    table = synthetic_outcomes(n=240, n_models=3, seed=7)
    spec = fit_feature_spec(table.tasks, table.metadata)
    data = RouterData.from_table(table, spec)
    router = train_router(data, spec, FAST.replace(linear_head=False), seed=0, ensemble=1)
    assert router.decision_rule.linear_weight == 0.0 and "linear_head" not in (router.decision_rule.evidence or {})
    assert all(card.linear is None for card in router.cards.values())
    assert router.linear_heads(router.models) is None  # nothing to blend in predict or the gateway
