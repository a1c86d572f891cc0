"""Charts (textual-plotext): quality vs latency per model, and the last validation's frontiers."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from lrcal.services.review import ScatterPoint

# Plotext colour names that read on dark and light themes alike, one per model.
SERIES_COLORS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")


class ChartsPane(Vertical, can_focus=True):
    BINDINGS = [Binding("a", "toggle_axis", "Cost/latency frontier")]

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.axis = "latency"
        self.points: list[ScatterPoint] = []
        self.points_label = ""
        self.frontier: dict | None = None
        self.frontiers: dict[str, dict] = {}
        self._ready = False

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # plotext is imported when the tab is first built

        yield Static(id="charts-info")
        with Horizontal(id="charts-row"):
            yield PlotextPlot(id="scatter")
            yield PlotextPlot(id="frontier")

    def on_mount(self) -> None:
        self._ready = True  # the plots are mounted: data that came first can be drawn now
        pending = getattr(self.app, "chart_data", None)
        if pending is not None:
            self.set_data(*pending)

    def set_data(self, label: str, points: list[ScatterPoint], frontiers: dict[str, dict], model: str | None) -> None:
        self.points, self.points_label, self.frontiers = points, label, frontiers
        self.show_model(model)

    def show_model(self, model: str | None) -> None:
        """Frontiers of ``model``'s last validation (the routing view's candidate), else the latest."""
        self.frontier = self.frontiers.get(model) if model else None
        if self.frontier is None:
            self.frontier = next(iter(self.frontiers.values()), None)
        if self._ready:
            self.redraw()

    def redraw(self) -> None:
        self._draw_scatter()
        self._draw_frontier()
        if self.frontier:
            info = (f"Left: each model's quality vs p50 latency on {self.points_label}. Right: the router's "
                    f"{self.axis} frontier from the last validation ({self.frontier['model']}, "
                    f"{self.frontier['decision']}), λ swept over the grid; a toggles cost/latency.")  # fmt: skip
        else:
            info = f"Left: each model's quality vs p50 latency on {self.points_label}. No validation yet for a frontier."
        self.query_one("#charts-info", Static).update(info)

    def _draw_scatter(self) -> None:
        widget = self.query_one("#scatter")
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("quality vs p50 latency")
        plt.xlabel("p50 latency (ms)")
        plt.ylabel("quality")
        for i, point in enumerate(self.points):
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            marker = "●" if point.status == "enabled" else "○"
            plt.scatter([point.latency_ms], [point.quality], marker=marker, color=color, label=point.model)
        if self.points:
            ys = [p.quality for p in self.points]
            plt.ylim(max(0.0, min(ys) - 0.1), min(1.0, max(ys) + 0.1))
        widget.refresh()

    def _draw_frontier(self) -> None:
        widget = self.query_one("#frontier")
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        frontier = (self.frontier or {}).get(self.axis)
        if not frontier:
            plt.title("no validation yet")
            widget.refresh()
            return
        key = "latency_ms_p95" if self.axis == "latency" else "cost_usd_mean"
        scale = 1.0 if self.axis == "latency" else 1000.0  # cost per 1,000 queries reads better
        plt.title(f"with vs without {self.frontier['model']}")
        plt.xlabel("p95 latency (ms)" if self.axis == "latency" else "USD per 1k queries")
        plt.ylabel("quality")
        for series, color, label in (("router_without", "orange", "without"), ("router_with", "cyan", "with")):
            points = sorted(frontier.get(series, []), key=lambda p: p[key])
            if points:
                plt.plot([p[key] * scale for p in points], [p["quality"] for p in points], marker="●", color=color,
                         label=f"{label} (area {frontier.get('area_' + label, 0):.3f})")  # fmt: skip
        widget.refresh()

    def action_toggle_axis(self) -> None:
        self.axis = "cost" if self.axis == "latency" else "latency"
        self.redraw()
