"""The whole gate's false-validation rate under a null where neither path should pass
(docs/validation.md, "Sequential decisions"): the true mean-cost ratio and p95 latency ratio
exactly 0.85 (on the -15 % saving threshold), the true quality gain on or below the gain path's
+1 point, every other rule clearly fine. Runs the gate's own `decide` and `plan_looks` look by
look, as `lrcal.services.live_validation` does.

    python scripts/gate_either_path_null.py TRIALS BOOTSTRAP SHARE EXTRA_ACCURACY
    python scripts/gate_either_path_null.py 2000 2000 0.5 0.02   # true gain 0.5 x 2 = 1 point
    python scripts/gate_either_path_null.py 2000 2000 0.5 0      # true gain 0

(first written by a statistics review; each rule's error rate is bounded by --error-rate, the
gate's either/or is not)."""
import sys

import numpy as np

from lrcal.gate.decision import GateConfig, LookEvidence, decide
from lrcal.gate.intervals import PairedOutcomes
from lrcal.gate.policies import PolicyResult
from lrcal.gate.sequential import plan_looks

N, BATCH, S = 144, 24, float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
cfg = GateConfig(bootstrap=int(sys.argv[2]) if len(sys.argv) > 2 else 400)
plan = plan_looks(N, BATCH, cfg.error_rate)
rng0 = np.random.default_rng(123)
# calibrate the candidate latency factor so that the population p95 ratio is exactly 0.85
big = 400_000
lat_inc = rng0.lognormal(np.log(400), 0.5, big)
cand = rng0.random(big) < S
lat_c = rng0.lognormal(np.log(400), 0.5, big)
def p95_ratio(f):
    w = np.where(cand, f * lat_c, lat_inc); return np.percentile(w, 95) / np.percentile(lat_inc, 95)
lo, hi = 0.01, 1.0
for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if p95_ratio(mid) < 0.85 else (lo, mid)
F = (lo + hi) / 2
COST_FACTOR = 1 - 0.15 / S  # E[cost_with]/E[cost_without] = 0.85 exactly
print(f"latency factor {F:.3f} (pop p95 ratio {p95_ratio(F):.4f}), cost factor {COST_FACTOR:.3f}; z={plan.z}")

dummy = PolicyResult("x", np.zeros(1, int), 0, 0, 0, 0, {}, per_task={})
def trial(rng):
    cand = rng.random(N) < S
    q_inc = (rng.random(N) < 0.6).astype(float)
    q_cand = (rng.random(N) < 0.6 + (float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)).astype(float)
    c_inc = rng.lognormal(np.log(1e-3), 0.5, N); c_cand = COST_FACTOR * rng.lognormal(np.log(1e-3), 0.5, N)
    l_inc = rng.lognormal(np.log(400), 0.5, N); l_cand = F * rng.lognormal(np.log(400), 0.5, N)
    W = lambda a, b: np.where(cand, a, b)
    full = PairedOutcomes(W(q_cand, q_inc), q_inc, W(c_cand, c_inc) * 0 + W(c_cand, c_inc), c_inc, W(l_cand, l_inc), l_inc)
    prev = {}
    for k, n in enumerate(plan.looks):
        p = PairedOutcomes(*(getattr(full, f)[:n] for f in PairedOutcomes.__dataclass_fields__))
        ev = LookEvidence("cand", n, p, n, 0, int(cand[:n].sum()), dummy, dummy, {}, {})
        d = decide(ev, cfg, plan.z[k], prev)
        prev = d.rules_by_key()
        if d.decision != "undecided":
            return d.decision, d.path, {r.key: r.verdict for r in d.rules}
    return "undecided", None, {r.key: r.verdict for r in d.rules}

trials = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = np.random.default_rng(7)
out = [trial(rng) for _ in range(trials)]
en = [o for o in out if o[0] == "validated"]
print(f"trials {trials}: false ENABLE {len(en)/trials:.3f} (claimed error rate {cfg.error_rate}); "
      f"via gain {sum(o[1]=='gain' for o in en)/trials:.3f}, via saving {sum(o[1]=='saving' for o in en)/trials:.3f}")
sav = [o for o in out if o[2]['saving'] == 'pass']
print("saving rule wrongly passes:", len(sav)/trials, "; rejected", sum(o[0]=='rejected' for o in out)/trials)
