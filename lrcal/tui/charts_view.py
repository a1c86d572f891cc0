"""Charts (textual-plotext): quality vs latency per model, and the last validation's frontiers."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from lrcal.services.review import ScatterPoint

# Plotext colour names that read on dark and light themes alike, and a marker, one per model:
# models differ by shape too, not by colour only. RICH_COLORS: the same colours for the legends.
SERIES_COLORS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")
RICH_COLORS = {"orange": "dark_orange", "gray": "grey62"}
MARKERS = ("●", "▲", "■", "◆", "✚", "✖", "★", "▼")


def series_style(i: int) -> tuple[str, str]:
    """(plotext colour, marker) of the i-th series."""
    return SERIES_COLORS[i % len(SERIES_COLORS)], MARKERS[i % len(MARKERS)]


def legend(entries: list[tuple[str, str, str]]):
    """A legend beside the plot (the plot's own would cover its data): (marker, colour, label) rows."""
    text = Text()
    for i, (marker, color, label) in enumerate(entries):
        if i:
            text.append("\n")
        text.append(marker + " ", style=f"bold {RICH_COLORS.get(color, color)}")
        text.append(label)
    return text


class ChartsPane(Vertical, can_focus=True):
    BINDINGS = [Binding("a", "toggle_axis", "frontier: cost/latency")]

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
            with Vertical(classes="chart"):
                yield PlotextPlot(id="scatter")
                yield Static(id="scatter-legend", classes="legend")
            with Vertical(classes="chart"):
                yield PlotextPlot(id="frontier")
                yield Static(id="frontier-legend", classes="legend")

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
        self.query_one("#charts-info", Static).update(Text(info))  # Text: set and model names are not markup

    def _draw_scatter(self) -> None:
        widget = self.query_one("#scatter")
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("quality vs p50 latency")
        plt.xlabel("p50 latency (ms)")
        plt.ylabel("quality")
        entries = []
        for i, point in enumerate(self.points):
            color, marker = series_style(i)
            plt.scatter([point.latency_ms], [point.quality], marker=marker, color=color)
            pool = "" if point.status == "enabled" else f" ({point.status})"
            entries.append((marker, color, f"{point.model}{pool}"))
        if self.points:
            ys = [p.quality for p in self.points]
            plt.ylim(max(0.0, min(ys) - 0.1), min(1.0, max(ys) + 0.1))
        self.query_one("#scatter-legend", Static).update(legend(entries))
        widget.refresh()

    def _draw_frontier(self) -> None:
        widget = self.query_one("#frontier")
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        frontier = (self.frontier or {}).get(self.axis)
        legend_widget = self.query_one("#frontier-legend", Static)
        if not frontier:
            plt.title("no validation yet")
            legend_widget.update("")
            widget.refresh()
            return
        key = "latency_ms_p95" if self.axis == "latency" else "cost_usd_mean"
        scale = 1.0 if self.axis == "latency" else 1000.0  # cost per 1,000 queries reads better
        plt.title(f"with vs without {self.frontier['model']}")
        plt.xlabel("p95 latency (ms)" if self.axis == "latency" else "USD per 1k queries")
        plt.ylabel("quality")
        entries = []
        for series, color, marker, label in (("router_without", "orange", "▲", "without"),
                                             ("router_with", "cyan", "●", "with")):  # fmt: skip
            points = sorted(frontier.get(series, []), key=lambda p: p[key])
            if points:
                plt.plot([p[key] * scale for p in points], [p["quality"] for p in points], marker=marker, color=color)
                entries.append((marker, color, f"router {label} {self.frontier['model']} "
                                               f"(area {frontier.get('area_' + label, 0):.3f})"))  # fmt: skip
        legend_widget.update(legend(entries))
        widget.refresh()

    def action_toggle_axis(self) -> None:
        self.axis = "cost" if self.axis == "latency" else "latency"
        self.redraw()
