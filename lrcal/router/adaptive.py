"""Active calibration: spend a newcomer's calibration examples on the task groups whose routing
decision is open, and stop once it is settled. numpy only; arrays in, arrays out.

The decision being bought is where the router sends traffic. Per task group t of a candidate
pool, the frozen router's view of the incumbents gives each candidate row i the score of the
best incumbent there, b_i. The newcomer's quality on the group, p_t, has a Beta posterior: the
router's own profile prior (its centre c_t, the newcomer's card's centre,
`profiles.compute_profiles`; its strength s held at half, "Exploring" below) plus the
outcomes so far,

    p_t ~ Beta(s c_t + S_t, s (1 - c_t) + n_t - S_t).

With posterior mean x_t the router would send the newcomer the rows of group t where
x_t > b_i, worth V_t(x) = share_t * mean_i max(x - b_i, 0) of routed accuracy over all
traffic. m more outcomes in group t move the mean to (alpha + S) / (alpha + beta + m) with S
beta-binomial; their value of information is the expected improvement of the decision,

    VOI_t(m) = E[V_t(x_t after m)] - V_t(x_t)   (>= 0, V_t is convex),

exact under the posterior (the knowledge gradient with an m-example look-ahead; Frazier &
Powell). A batch is filled greedily by the best value per example, (VOI_t(a + j) -
VOI_t(a)) / j over groups and look-aheads j (the KG* rule: a group whose decision needs
several outcomes to move is not starved by a one-step look-ahead). The run stops when even
the whole remaining budget, spent on any groups, cannot buy ``stop_value`` of routed accuracy
(sum_t VOI_t(remaining) < stop_value: an upper bound on every allocation), when the budget is
spent, or when the pool has no example left -- but never as settled before ``min_examples``
(a token needs 16 outcomes; until then the groups asked least are topped up).

Exploring: the sampler holds the prior at half its strength (``SamplerConfig.prior_scale``;
the card is still smoothed at full strength). The strength fits the population of training
models, and the models worth onboarding are the ones that deviate from it: on both shared
files the model with the most headroom is the least typical (its per-task deviations from
its centres imply a Beta strength 3-5 times below the population's). A sampler that
believes the population's prior of such a model calls a group settled after a few rows where
the model is in fact strong (docs/benchmarks.md measures 1, 0.5 and 0.25).

Which rows inside a group: a seeded random order, the next unasked rows in it. Rows are not
picked by the incumbents' score on them: that would choose by difficulty and bias the
newcomer's per-group estimate, which the fit then reads as its quality.

Reproducible: every batch is a function of the pool, the prior, the seed and the outcomes of
the earlier batches; `replay` recomputes the sequence from stored outcomes, so a killed run
resumes with the batch it was in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from lrcal.router.profiles import task_centers

STOP_BUDGET = "budget spent"
STOP_SETTLED = "settled"
STOP_EXHAUSTED = "pool exhausted"


@dataclass(frozen=True)
class SamplerConfig:
    budget: int = 64
    batch: int = 16
    first_per_group: int = 4  # the stratified first batch: this many per group, at most half the budget
    # never stop as settled before this many examples (a token needs at least 16 outcomes)
    min_examples: int = 16
    # stop once the remaining budget cannot buy this much routed accuracy (over all traffic)
    stop_value: float = 2e-4
    level: float = 0.9  # posterior intervals shown
    # the sampler's posterior holds the profile prior at this fraction of its strength (the card
    # is still smoothed at full strength): the models worth onboarding are the ones that deviate
    # from the population the prior was fitted on (module docstring, "Exploring")
    prior_scale: float = 0.5

    def __post_init__(self) -> None:
        if self.budget < 1 or self.batch < 1 or self.first_per_group < 1 or self.min_examples < 0:
            raise ValueError("budget, batch and first_per_group must be at least 1, min_examples at least 0")
        if not (math.isfinite(self.stop_value) and self.stop_value >= 0):
            raise ValueError("stop_value must be a finite number >= 0")
        if not (math.isfinite(self.prior_scale) and 0 < self.prior_scale <= 1):
            raise ValueError("prior_scale must lie in (0, 1]")


@dataclass(frozen=True)
class GroupPrior:
    """The router's profile prior for the newcomer: Beta strength ``strength`` pseudo-rows,
    centred on its overall accuracy (``offsets`` None) or on sigmoid(a + d_t) with the
    groups' logit ``offsets`` d [G] (0 for a group the router does not know)."""

    strength: float
    offsets: np.ndarray | None = None


@dataclass
class CandidatePool:
    """Candidate rows: their group [N] (0..G-1), the best incumbent's score there [N], the
    group labels; traffic shares default to the pool's own composition."""

    groups: np.ndarray
    incumbent_best: np.ndarray
    labels: Sequence[str]
    shares: np.ndarray | None = None
    _sorted: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.groups = np.asarray(self.groups, dtype=np.int64)
        self.incumbent_best = np.asarray(self.incumbent_best, dtype=np.float64)
        G = len(self.labels)
        if self.groups.shape != self.incumbent_best.shape or self.groups.ndim != 1:
            raise ValueError("groups and incumbent_best must be [N] arrays of the same length")
        if len(self.groups) and (self.groups.min() < 0 or self.groups.max() >= G):
            raise ValueError("group indices must lie in 0..len(labels)-1")
        if not np.all(np.isfinite(self.incumbent_best)):
            raise ValueError("incumbent_best must be finite")
        counts = np.bincount(self.groups, minlength=G).astype(np.float64)
        self.sizes = counts
        if self.shares is None:
            self.shares = counts / max(counts.sum(), 1.0)
        self.shares = np.asarray(self.shares, dtype=np.float64)
        # per group: sorted b and prefix sums, for V_t(x) in O(log n)
        self._sorted = []
        for t in range(G):
            b = np.sort(self.incumbent_best[self.groups == t])
            self._sorted.append((b, np.concatenate([[0.0], np.cumsum(b)])))

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    def value(self, t: int, x: np.ndarray) -> np.ndarray:
        """V_t(x): routed accuracy gained over all traffic by sending the newcomer group t's rows
        where x beats the best incumbent, its quality there being x."""
        b, prefix = self._sorted[t]
        x = np.asarray(x, dtype=np.float64)
        if len(b) == 0:
            return np.zeros_like(x)
        below = np.searchsorted(b, x, side="left")
        return self.shares[t] * (below * x - prefix[below]) / len(b)

    def incumbent_level(self, t: int) -> float | None:
        b, _ = self._sorted[t]
        return float(b.mean()) if len(b) else None

    def routed_share(self, t: int, x: float) -> float:
        """Share of group t's rows whose best incumbent scores below x."""
        b, _ = self._sorted[t]
        return float(np.searchsorted(b, x, side="left") / len(b)) if len(b) else 0.0


def posterior(prior: GroupPrior, counts: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta (alpha, beta) [G] of the newcomer's quality per group from its outcome counts and
    sums there: the profile's own smoothing, so the posterior mean is its card's task accuracy."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    overall = np.array([(sums.sum() + 1.0) / (counts.sum() + 2.0)])
    centre = task_centers(overall, counts[None], prior.offsets)[0] if prior.offsets is not None else \
        np.repeat(overall, len(counts))
    centre = np.clip(centre, 1e-4, 1 - 1e-4)
    s = float(prior.strength)
    return s * centre + sums, s * (1.0 - centre) + counts - sums


def _log_rising(start: float, m: int) -> np.ndarray:
    """log Gamma(start + s) - log Gamma(start), s = 0..m."""
    return np.concatenate([[0.0], np.cumsum(np.log(start + np.arange(m)))])


def beta_binomial_pmfs(m_max: int, alpha: float, beta: float) -> np.ndarray:
    """[m_max + 1, m_max + 1]: row m holds P(S = s), s = 0..m (zeros beyond), S the successes
    of m draws under a Beta(alpha, beta) quality."""
    m = np.arange(m_max + 1)[:, None]
    s = np.arange(m_max + 1)[None, :]
    valid = s <= m
    log_fact = _log_rising(1.0, m_max)  # log m!
    la, lb, lab = _log_rising(alpha, m_max), _log_rising(beta, m_max), _log_rising(alpha + beta, m_max)
    rest = np.where(valid, m - s, 0)
    log_p = log_fact[m] - log_fact[s] - log_fact[rest] + la[s] + lb[rest] - lab[m]
    log_p = np.where(valid, log_p, -np.inf)
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def value_of_information(pool: CandidatePool, alpha: np.ndarray, beta: np.ndarray, horizon: np.ndarray) -> list[np.ndarray]:
    """Per group t, VOI_t(m) for m = 0..horizon[t]: the expected routed-accuracy gain of
    deciding group t after m more of its outcomes instead of now."""
    out = []
    for t in range(pool.n_groups):
        a, b = float(alpha[t]), float(beta[t])
        now = float(pool.value(t, np.array([a / (a + b)]))[0])
        m_max = int(horizon[t])
        pmf = beta_binomial_pmfs(m_max, a, b)
        m = np.arange(m_max + 1)[:, None]
        after = (a + np.arange(m_max + 1)[None, :]) / (a + b + m)  # the posterior mean after s of m
        expected = (pmf * pool.value(t, np.minimum(after, 1.0))).sum(axis=1)
        out.append(np.maximum(expected - now, 0.0))
    return out


def allocate(voi: Sequence[np.ndarray], slots: int) -> np.ndarray:
    """[G] examples per group for the next batch: greedily the best value per example,
    (VOI_t(a_t + j) - VOI_t(a_t)) / j; groups whose decision no look-ahead can move get none."""
    taken = np.zeros(len(voi), dtype=np.int64)
    while slots > 0:
        best_rate, best = 0.0, None
        for t, v in enumerate(voi):
            room = min(slots, len(v) - 1 - taken[t])
            if room <= 0:
                continue
            gains = (v[taken[t] + 1: taken[t] + room + 1] - v[taken[t]]) / np.arange(1, room + 1)
            j = int(np.argmax(gains))
            if gains[j] > best_rate + 1e-15:
                best_rate, best = float(gains[j]), (t, j + 1)
        if best is None:
            break
        taken[best[0]] += best[1]
        slots -= best[1]
    return taken


def _even_top_up(asked: np.ndarray, room: np.ndarray, slots: int) -> np.ndarray:
    """[G] examples per group: one at a time to the group with the fewest asked that has room."""
    take = np.zeros(len(asked), dtype=np.int64)
    for _ in range(slots):
        open_groups = np.flatnonzero(take < room)
        if not len(open_groups):
            break
        t = open_groups[np.argmin((asked + take)[open_groups])]
        take[t] += 1
    return take


@dataclass
class GroupState:
    """One group after the outcomes so far: what was spent there and the posterior that stands."""

    label: str
    n: int
    mean: float
    low: float
    high: float
    incumbents: float | None  # mean best-incumbent score over the group's candidate rows
    routed_share: float  # share of the group's rows the newcomer would get at the posterior mean
    value_left: float  # VOI of the rest of the budget spent here

    @property
    def verdict(self) -> str:
        if self.incumbents is None:
            return "no candidates"
        if self.high < self.incumbents:
            return "below"
        if self.low > self.incumbents:
            return "above"
        return "open"

    def to_dict(self) -> dict:
        return {"group": self.label, "n": self.n, "mean": self.mean, "low": self.low, "high": self.high,
                "incumbents": self.incumbents, "routed_share": self.routed_share, "value_left": self.value_left,
                "verdict": self.verdict}


def beta_interval(alpha: float, beta: float, level: float, grid: int = 4001) -> tuple[float, float]:
    """Equal-tailed ``level`` interval of Beta(alpha, beta) (numerically, on a grid)."""
    x = np.linspace(0.0, 1.0, grid)[1:-1]
    log_pdf = (alpha - 1) * np.log(x) + (beta - 1) * np.log1p(-x)
    pdf = np.exp(log_pdf - log_pdf.max())
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    tail = (1 - level) / 2
    return float(np.interp(tail, cdf, x)), float(np.interp(1 - tail, cdf, x))


@dataclass
class SamplerState:
    """Where a run stands: the rows asked so far in order, the batches, the next batch to ask
    (empty once stopped) and why it stopped."""

    asked: list[int]
    batches: list[list[int]]
    pending: list[int]
    stop: str | None
    groups: list[GroupState]
    value_left: float

    @property
    def used(self) -> int:
        return len(self.asked)

    def summary(self) -> dict:
        return {"used": self.used, "batches": len(self.batches), "stop": self.stop, "value_left": self.value_left,
                "groups": [g.to_dict() for g in self.groups]}


class AdaptiveSampler:
    """The choice sequence of one newcomer on one candidate pool (see the module docstring)."""

    def __init__(self, pool: CandidatePool, prior: GroupPrior, config: SamplerConfig = SamplerConfig(),
                 seed: int | Sequence[int] = 0) -> None:
        self.pool, self.config = pool, config
        # what the sampler decides on: the router's prior, held more loosely (``prior_scale``)
        self.prior = GroupPrior(strength=prior.strength * config.prior_scale, offsets=prior.offsets)
        rank = np.random.default_rng(seed).permutation(len(pool.groups))
        # per group, its candidate rows in a seeded random order
        order = np.argsort(rank, kind="stable")
        self.order = [order[pool.groups[order] == t] for t in range(pool.n_groups)]

    def first_batch(self) -> list[int]:
        """Up to ``first_per_group`` rows of every group, at most half the budget (then spread
        evenly over the groups, the larger groups first)."""
        G, cfg = self.pool.n_groups, self.config
        per = np.array([min(cfg.first_per_group, len(o)) for o in self.order])
        limit = max(1, cfg.budget // 2)
        while per.sum() > limit:
            t = int(np.argmax(per - 1e-6 * self.pool.sizes))  # trim the fullest, the smaller groups first
            per[t] -= 1
        return sorted(int(i) for t in range(G) for i in self.order[t][: per[t]])

    def _counts(self, asked: Sequence[int], outcomes: Mapping[int, float | None]) -> tuple[np.ndarray, np.ndarray]:
        counts, sums = np.zeros(self.pool.n_groups), np.zeros(self.pool.n_groups)
        for i in asked:
            y = outcomes.get(i)
            if y is None or not math.isfinite(y):  # an endpoint error: asked, but no evidence
                continue
            t = self.pool.groups[i]
            counts[t] += 1
            sums[t] += float(y)
        return counts, sums

    def _state(self, asked: list[int], outcomes: Mapping[int, float | None]):
        counts, sums = self._counts(asked, outcomes)
        alpha, beta = posterior(self.prior, counts, sums)
        asked_set = set(asked)
        left = [[int(i) for i in o if int(i) not in asked_set] for o in self.order]
        remaining = self.config.budget - len(asked)
        horizon = np.array([min(max(remaining, 0), len(rows)) for rows in left])
        voi = value_of_information(self.pool, alpha, beta, horizon)
        return counts, alpha, beta, left, remaining, voi

    def next_batch(self, asked: list[int], outcomes: Mapping[int, float | None]) -> tuple[list[int], str | None]:
        """The next rows to ask after ``asked`` (with their ``outcomes``; None: an endpoint
        error), or ([], why it stops)."""
        if not asked:
            first = self.first_batch()
            return (first, None) if first else ([], STOP_EXHAUSTED)
        counts, _alpha, _beta, left, remaining, voi = self._state(asked, outcomes)
        if remaining <= 0:
            return [], STOP_BUDGET
        if not any(left):
            return [], STOP_EXHAUSTED
        slots = min(self.config.batch, remaining)
        settled = sum(float(v[-1]) for v in voi) < self.config.stop_value
        take = np.zeros(self.pool.n_groups, dtype=np.int64) if settled else allocate(voi, slots)
        if take.sum() == 0:
            # outcomes, not requests: with endpoint errors among the asked it stopped "settled"
            # below the token fit's minimum with budget left, and a rerun replayed the same stop
            short = min(self.config.min_examples, self.config.budget) - int(np.sum(counts))
            if short <= 0:
                return [], STOP_SETTLED
            # settled, but too few outcomes to fit a token: top up where the fewest were asked
            take = _even_top_up(np.bincount(self.pool.groups[asked], minlength=self.pool.n_groups),
                                np.array([len(rows) for rows in left]), min(short, slots))
        return sorted(i for t, rows in enumerate(left) for i in rows[: take[t]]), None

    def replay(self, outcomes: Mapping[int, float | None]) -> SamplerState:
        """The choice sequence as far as ``outcomes`` (row -> outcome, None: an endpoint error)
        reach: the batches fully answered, the batch still pending (its unanswered rows) or the
        reason the sequence stopped, and the per-group posterior after the answered rows."""
        return self._continue([], [], outcomes)

    def _continue(self, asked: list[int], batches: list[list[int]], outcomes: Mapping[int, float | None]) -> SamplerState:
        pending: list[int] = []
        while True:
            batch, stop = self.next_batch(asked, outcomes)
            if stop is not None:
                break
            batches.append(batch)
            pending = [i for i in batch if i not in outcomes]
            asked.extend(i for i in batch if i in outcomes)
            if pending:
                break
        groups, value_left = self.describe(asked, outcomes)
        return SamplerState(asked=asked, batches=batches, pending=pending, stop=stop, groups=groups,
                            value_left=value_left)

    def describe(self, asked: list[int], outcomes: Mapping[int, float | None]) -> tuple[list[GroupState], float]:
        """Per group after ``asked``: rows spent, the posterior and its interval, the incumbents'
        level, the share of rows routed at the posterior mean and the value of information left;
        and the total value left."""
        counts, alpha, beta, _left, _remaining, voi = self._state(asked, outcomes)
        out = []
        for t, label in enumerate(self.pool.labels):
            a, b = float(alpha[t]), float(beta[t])
            mean = a / (a + b)
            low, high = beta_interval(a, b, self.config.level)
            out.append(GroupState(label=str(label), n=int(counts[t]), mean=mean, low=low, high=high,
                                  incumbents=self.pool.incumbent_level(t), routed_share=self.pool.routed_share(t, mean),
                                  value_left=float(voi[t][-1])))
        return out, float(sum(float(v[-1]) for v in voi))

    def run(self, answer) -> SamplerState:
        """Run to the end, asking ``answer(rows) -> outcomes`` (a list; None: an error) batch by batch."""
        outcomes: dict[int, float | None] = {}
        asked: list[int] = []
        batches: list[list[int]] = []
        while True:
            state = self._continue(asked, batches, outcomes)
            if not state.pending:
                return state
            for i, y in zip(state.pending, answer(state.pending)):
                outcomes[int(i)] = None if y is None else float(y)
            asked, batches = state.asked + state.pending, state.batches  # the pending batch is answered now
