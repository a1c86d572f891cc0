"""Validation reports: report.md, report.json and two PNG plots."""

from __future__ import annotations

import json
import os
from pathlib import Path

POLICY_LABELS = {
    "router_with": "router with candidate",
    "router_without": "router without candidate",
    "candidate_only": "always candidate",
    "strongest": "strongest incumbent",
    "cheapest": "cheapest incumbent",
    "random": "random",
    "oracle": "oracle (reference)",
}
POLICY_MARKERS = {
    "router_with": ("*", "tab:red"),
    "router_without": ("D", "tab:blue"),
    "candidate_only": ("s", "tab:orange"),
    "strongest": ("^", "tab:green"),
    "cheapest": ("v", "tab:purple"),
    "random": ("o", "tab:gray"),
    "oracle": ("P", "black"),
}


REPORT_FILES = ("report.json", "report.md", "quality_vs_p95_latency.png", "quality_vs_cost.png")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no stray temporary file where a write failed
        raise


def write_report(result: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = dict(zip(("json", "markdown", "quality_vs_latency", "quality_vs_cost"), (out_dir / f for f in REPORT_FILES)))
    _atomic_write(paths["json"], (json.dumps(result, indent=2, default=float) + "\n").encode())
    plot_tradeoff(result, "latency", paths["quality_vs_latency"])
    plot_tradeoff(result, "cost", paths["quality_vs_cost"])
    _atomic_write(paths["markdown"], render_markdown(result, paths).encode())
    return paths


def plot_tradeoff(result: dict, axis: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xkey = "latency_ms_p95" if axis == "latency" else "cost_usd_mean"
    xlabel = "p95 latency (ms)" if axis == "latency" else "mean cost per query (USD)"
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    frontier = result.get("frontier", {}).get(axis, {})
    for key, style, label in (
        ("router_with", "-", "frontier with candidate (λ sweep)"),
        ("router_without", "--", "frontier without candidate (λ sweep)"),
    ):
        points = sorted(frontier.get(key, []), key=lambda p: p[xkey])
        if points:
            xs, ys, best = [], [], -1.0
            for p in points:  # step frontier: best quality reachable at or below x
                best = max(best, p["quality"])
                xs.append(p[xkey])
                ys.append(best)
            ax.step(xs, ys, where="post", linestyle=style, color=POLICY_MARKERS[key][1], alpha=0.6, label=label)
    for name, stats in result["policies"].items():
        marker, colour = POLICY_MARKERS.get(name, ("o", None))
        ax.scatter(stats[xkey], stats["quality"], marker=marker, s=90, color=colour, zorder=3,
                   label=POLICY_LABELS.get(name, name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("quality (mean score on live validation queries)")
    ax.set_title(f"{result['model']}: quality vs {'p95 latency' if axis == 'latency' else 'cost'} "
                 f"({result['n']} queries, {result['set']})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def render_markdown(result: dict, paths: dict[str, Path] | None = None) -> str:
    params, run = result["parameters"], result.get("sequential", {})
    lines = [
        f"# Live validation: {result['model']} — {result['decision'].upper()}"
        + (f" ({result['path']} path)" if result.get("path") in ("gain", "saving") else ""),
        "",
        f"**{result['reasons'][-1]}**",
        "",
        f"- status: **{result.get('status', '?')}** {result.get('note') or ''}".rstrip(),
        f"- examples used: **{result['n']}** of {run.get('examples_planned', result['n'])} on `{result['set']}` "
        f"(version `{result['set_version'][:12]}`): {run.get('looks_taken', 1)} of {len(run.get('looks', [1]))} "
        f"planned look(s) at {', '.join(str(n) for n in run.get('looks', [result['n']]))} examples; "
        f"stopped: {run.get('stopped', '?')}",
        f"- money: **${result.get('spend_usd', 0.0):.4f}** spent on {result.get('requests', 0)} requests in this run; "
        f"the outcomes used cost ${result.get('outcomes_cost_usd', 0.0):.4f} in all"
        + (f"; budget ${result['budget_usd']:g}" if result.get("budget_usd") is not None else ""),
        f"- incumbents: {', '.join(result['incumbents']) or '(none)'}; router `{result.get('router_version')}`",
        f"- routing policy judged: λ_cost = {params['lambda_cost']:g}, λ_latency = {params['lambda_latency']:g}; "
        f"each rule's verdict is wrong with probability ≤ {params['error_rate']:g} over every look "
        "(alpha spending, see docs/validation.md)",
        "",
        "## Rules",
        "",
        "| rule | path | threshold | measured [interval] | verdict | decided at |",
        "|---|---|---|---|---|---:|",
    ]
    for rule in result.get("rules", []):
        measured = rule["detail"] if rule["key"] == "prediction" else rule["measured_text"]
        label = rule["label"] + (f" ({rule['detail']})" if rule["detail"] and rule["key"] != "prediction" else "")
        threshold = "reaches the predicted low" if rule["key"] == "prediction" else rule["threshold_text"]
        lines.append(f"| {label} | {', '.join(rule['paths'])} | {threshold} | {measured} | **{rule['verdict']}** | "
                     f"{rule['decided_at'] if rule['decided_at'] is not None else '–'} |")  # fmt: skip
    lines += ["", "## Recommended operating point (quality–cost frontier, router with the candidate)", ""]
    lines += [recommendation_text(result)]
    lines += ["", "## Reasons", ""]
    lines += [f"- {r}" for r in result["reasons"]]
    lines += [
        "",
        "## Policies",
        "",
        "| policy | quality | mean cost (USD) | p50 latency (ms) | p95 latency (ms) | errors | share of queries |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, stats in result["policies"].items():
        share = ", ".join(f"{m} {s:.0%}" for m, s in sorted(stats["share"].items(), key=lambda kv: -kv[1]) if s > 0)
        lines.append(
            f"| {POLICY_LABELS.get(name, name)} | {stats['quality']:.3f} | {stats['cost_usd_mean']:.6f} | "
            f"{stats['latency_ms_p50']:.0f} | {stats['latency_ms_p95']:.0f} | {stats.get('error_rate', 0.0):.1%} | "
            f"{share} |"
        )
    lines += ["", "## Per task group (router with vs without the candidate)", ""]
    lines += ["| task | n | quality with | quality without | candidate share | candidate live acc |", "|---|---:|---:|---:|---:|---:|"]
    for task, row in result["per_task"].items():
        lines.append(
            f"| {task} | {row['n']} | {row['router_with']['quality']:.3f} | {row['router_without']['quality']:.3f} | "
            f"{row['router_with']['share'].get(result['model'], 0.0):.0%} | {row['candidate_accuracy']:.3f} |"
        )
    frontier = result.get("frontier", {})
    if frontier:
        lines += ["", "## Frontiers (λ swept over a fixed grid)", ""]
        for axis in ("cost", "latency"):
            f = frontier[axis]
            lines.append(
                f"- quality vs {axis}: area with {f['area_with']:.3f}, without {f['area_without']:.3f}; "
                f"with dominates without: {'yes' if f['with_dominates_without'] else 'no'}"
            )
    if paths:
        lines += [
            "",
            f"![quality vs p95 latency]({paths['quality_vs_latency'].name})",
            "",
            f"![quality vs cost]({paths['quality_vs_cost'].name})",
        ]
    return "\n".join(lines) + "\n"


def recommendation_text(result: dict, markdown: bool = True) -> str:
    point = result.get("recommended_policy")
    if not point:
        return "(none)"
    saved = result.get("policy_saved")
    if point["lambda_cost"] == point["current_lambda_cost"]:
        text = (f"λ_cost = {point['lambda_cost']:g}, λ_latency = {point['lambda_latency']:g} (the current policy): "
                f"no cheaper λ on the grid kept quality within the tolerance and p95 latency within its bound "
                f"({point['points_tried']} points tried).")  # fmt: skip
    else:
        versus = point["versus_current"]
        q, c = versus["quality"], versus["cost_ratio"]
        text = (f"λ_cost = {point['lambda_cost']:g}, λ_latency = {point['lambda_latency']:g}: quality "
                f"{point['quality']:.3f} vs {point['current_quality']:.3f} at λ_cost = {point['current_lambda_cost']:g} "
                f"({q['estimate'] * 100:+.1f} pts [{q['low'] * 100:+.1f}, {q['high'] * 100:+.1f}]), mean cost "
                f"${point['cost_usd_mean']:.6f} vs ${point['current_cost_usd_mean']:.6f} "
                f"({(c['estimate'] - 1) * 100:+.0f}%); each of {point['points_tried']} grid points tested at "
                f"z = {point['z']:.2f}.")  # fmt: skip
    if saved:
        return text + (" **Saved as the routing policy.**" if markdown else " Saved as the routing policy.")
    if result["decision"] == "validated":
        return text + " Not saved (it is saved with `--enable`, or set it with `lrcal policy set`)."
    return text
