"""Markdown tables from `lrcal bench coldstart --json` output (for docs/benchmarks.md).

    lrcal bench coldstart --outcomes FILE.csv --json > cs.json
    python scripts/coldstart_markdown.py cs.json
"""

from __future__ import annotations

import json
import sys


def fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> None:
    text = open(sys.argv[1]).read()
    result = json.loads(text[text.index("{"):text.rindex("}") + 1])
    ks = [str(k) for k in result["ks"]]
    print(f"{result['dataset']}: {result['n_samples']} samples × {result['n_models']} models, "
          f"{len(result['holdout'])} held out in turn, {result['folds']}-fold cross-fitting, {result['repeats']} draw(s); "
          f"headroom (U_full − U_without ≥ 0.005): {', '.join(result['headroom_models']) or 'none'}. "
          f"{result['seconds'] / 60:.0f} min ({result['router_train_seconds'] / 60:.0f} min router training), "
          f"token fit {result['fit_seconds']['mean']:.2f} s mean / {result['fit_seconds']['max']:.2f} s max; "
          f"profile-only chosen by CV in {100 * result['profile_only_share']:.0f}% of fits; profile prior of the "
          f"routers without the held-out model (centre:strength × routers): "
          f"{', '.join(f'{k} × {v}' for k, v in result.get('profile_priors', {}).items()) or '–'}.\n")
    print("| method | " + " | ".join(f"k={k} gain | k={k} harm" for k in ks) + " |")
    print("|---|" + "---|---|" * len(ks))
    rows = [("**onboard (frozen router)**", result["k"])] + list(result["baselines"].items())
    for name, entry in rows:
        cells = []
        for k in ks:
            cells += [fmt(entry[k]["gain_recovered"], 2), fmt(entry[k]["harm"], 4)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    frontier = result.get("lookup_frontier")
    if frontier:
        print("\nPer-task lookup over its shrinkage sweep (gain / harm), and its best gain at no more harm than onboarding:\n")
        shrinks = [p["shrink"] for p in frontier[ks[0]]]
        print("| k | " + " | ".join(f"shrink {c:g}" for c in shrinks) + " | onboard | lookup at onboard's harm |")
        print("|---|" + "---|" * len(shrinks) + "---|---|")
        for k in ks:
            cells = [f"{fmt(p['gain_recovered'], 2)} / {fmt(p['harm'], 4)}" for p in frontier[k]]
            mine = result["k"][k]
            print(f"| {k} | " + " | ".join(cells) + f" | **{fmt(mine['gain_recovered'], 2)} / {fmt(mine['harm'], 4)}** | "
                  f"{fmt(result['lookup_gain_at_onboard_harm'][k], 2)} |")
    decisions = result.get("task_decisions")
    if decisions:
        unlimited = decisions["unlimited"]
        print("\nPer-task decisions (a reference bound, read off with the test outcomes, not a method): route a task "
              "to the held-out model exactly when an estimate from its k calibration rows beats the best incumbent's "
              f"training accuracy there; {len(decisions['rules'][ks[0]])} estimates (plain or difficulty-adjusted, "
              "shrunk toward the overall or a task centre, strength 1–128). From all of the model's training rows "
              f"instead of k: gain {fmt(unlimited['gain_recovered'], 2)}, harm {fmt(unlimited['harm'], 4)}.\n")
        limit = decisions["harm_limit"]
        print(f"| k | best rule at harm ≤ {limit:g} | its gain / harm | best rule at onboarding's harm | its gain / harm "
              "| onboard gain / harm |")
        print("|---|---|---|---|---|---|")
        for k in ks:
            cells = []
            for key in ("best_at_harm_limit", "best_at_onboard_harm"):
                best = decisions[key][k]
                cells += ["–", "–"] if best is None else [
                    f"`{best['rule']}`", f"{fmt(best['gain_recovered'], 2)} / {fmt(best['harm'], 4)}"]
            mine = result["k"][k]
            print(f"| {k} | " + " | ".join(cells) + f" | {fmt(mine['gain_recovered'], 2)} / {fmt(mine['harm'], 4)} |")
    print(f"\nRouted accuracy without the held-out model {100 * result['without']['accuracy']:.1f}%, "
          f"full retrain {100 * result['full_retrain']['accuracy']:.1f}% (mean over held-out models).\n")
    print("| held-out model | headroom | U_without | U_full | " + " | ".join(f"U_{k}" for k in ks)
          + f" | share routed (k={ks[-1]}) | precision / recall | ECE |")
    print("|---|---|---|---|" + "---|" * len(ks) + "---|---|---|")
    for row in result["per_model"]:
        last = row["per_k"][ks[-1]]
        print(f"| {row['model']} | {'yes' if row['headroom'] else ''} | {fmt(row['U_without'])} | {fmt(row['U_full'])} | "
              + " | ".join(fmt(row["U_k"][k]) for k in ks)
              + f" | {fmt(last['share_routed'], 2)} | {fmt(last['precision'], 2)} / {fmt(last['recall'], 2)} | {fmt(last['ece'], 3)} |")


if __name__ == "__main__":
    main()
