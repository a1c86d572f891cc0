"""Examples of one routing cell: question, reference answer, the image, every model's stored
answer and score, and the router's decision score for each model. Filters: failures only,
models disagree, one task group."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lrcal.services.review import ALL_EXAMPLES, DISAGREE, EXAMPLE_FILTERS, FAILURES, ExampleView, RoutingSnapshot, RoutingTable
from lrcal.tui import fmt
from lrcal.tui.halfblocks import image_halfblocks
from lrcal.tui.images import GRAPHICS, graphics_widget, open_in_viewer
from lrcal.tui.widgets import Notice, theme_colors

IMAGE_WIDTH = 30
IMAGE_HEIGHT = 12
FILTER_WORDS = {ALL_EXAMPLES: "all", FAILURES: "failures only", DISAGREE: "models disagree"}


class ExamplesScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("f", "next_filter", "filter"),
        Binding("g", "next_group", "task group"),
        Binding("v", "view_image", "image viewer"),
        Binding("d", "detail", "model"),
    ]

    def __init__(self, snap: RoutingSnapshot, routed: RoutingTable, task: str | None, model: str | None) -> None:
        super().__init__()
        self.snap, self.routed, self.task_group, self.model = snap, routed, task, model
        self.only = ALL_EXAMPLES
        self.views: list[ExampleView] = []
        self.loaded = False
        self._images: dict[str, bytes | None] = {}
        self._paths: dict[str, str | None] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="examples-title")
        with Horizontal(id="examples-body"):
            yield DataTable(id="examples-list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="example-detail"):
                yield Notice("Loading examples…", id="examples-message")
                with Horizontal(id="example-top"):
                    yield Static(id="example-image")
                    yield Container(id="example-graphics")
                    yield Static(id="example-text")
                yield DataTable(id="example-answers", cursor_type="none", zebra_stripes=True, show_cursor=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        listing = self.query_one("#examples-list", DataTable)
        listing.add_column("example", width=16)
        listing.add_column("score", width=5)
        answers = self.query_one("#example-answers", DataTable)
        # "dec.": the router's decision score (`Prediction.score`, what it routes on; "decision" in
        # `lrcal route`), not the network's μ̃ = clip(μ + δ). "score": the stored answer's score.
        for label, width in (("", 1), ("model", 17), ("dec.", 4), ("score", 5), ("latency", 7), ("answer", 30)):
            answers.add_column(label, width=width)
        self.query_one("#example-top").display = False
        self.query_one("#example-answers").display = False
        self._show_title()
        self.load()

    def _show_title(self) -> None:
        group = self.task_group or "every task group"
        who = f"routed to {self.model}" if self.model else "all models"
        self.sub_title = f"{group} · {who} · {FILTER_WORDS[self.only]}"
        self.query_one("#examples-title", Static).update(
            Text.assemble(
                (group, "bold"),
                f" queries {who} at λ cost {fmt.lam(self.routed.lambda_cost)}, "
                f"λ latency {fmt.lam(self.routed.lambda_latency)} · ",
                ("f", "bold"), f" {FILTER_WORDS[self.only]} · ", ("g", "bold"), " group · ",
                ("▶", "bold"), " = the router's choice, dec. = its decision score",
            )
        )  # fmt: skip

    @work(thread=True, exclusive=True, group="examples")
    def load(self) -> None:
        try:
            with self.app.service.connect() as review:
                views = review.examples_for(self.snap, self.task_group, self.model, routed=self.routed,
                                            only=self.only)
                shas = {v.image_sha256 for v in views if v.image_sha256} - set(self._images)
                images = {sha: review.image_bytes(sha) for sha in shas}
                paths = {sha: review.image_path(sha) for sha in shas}
        except Exception as exc:  # a locked or damaged database: said here, as the detail screen says it
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.show_examples, views, images, paths)

    def _failed(self, message: str) -> None:
        notice = self.query_one("#examples-message", Notice)
        notice.update(message)
        notice.add_class("-error")
        notice.display = True

    def show_examples(self, views: list[ExampleView], images: dict, paths: dict) -> None:
        self.views = views
        self._images.update(images)
        self._paths.update(paths)
        self.loaded = True
        listing = self.query_one("#examples-list", DataTable)
        listing.clear()
        message = self.query_one("#examples-message", Notice)
        if not views:
            where = f"{self.task_group} queries" if self.task_group else "queries"
            sent = f" the router sends to {self.model} at these λ" if self.model else ""
            message.update(f"No {where}{sent} match the filter ({FILTER_WORDS[self.only]}); f changes it.")
            message.display = True
            self.query_one("#example-top").display = False
            self.query_one("#example-answers").display = False
            return
        message.display = False
        for view in views:
            chosen = next((a for a in view.answers if a.chosen), None)
            score = fmt.quality(chosen.score) if chosen else fmt.DASH
            short = view.example_id.rsplit("-", 2)
            label = "-".join(short[-2:]) if len(short) >= 2 else view.example_id
            listing.add_row(Text(label), score, key=str(view.pk))  # Text: a sample id `s[/x]-0` is not markup
        listing.focus()
        self.show_example(0)

    def current(self) -> ExampleView | None:
        listing = self.query_one("#examples-list", DataTable)
        row = listing.cursor_coordinate.row
        return self.views[row] if self.views and 0 <= row < len(self.views) else None

    def _show_image(self, view: ExampleView) -> None:
        holder = self.query_one("#example-image", Static)
        graphics = self.query_one("#example-graphics", Container)
        graphics.remove_children()
        data = self._images.get(view.image_sha256) if view.image_sha256 else None
        # The image takes up to IMAGE_WIDTH columns, less on a narrow terminal (text needs room too).
        width = min(IMAGE_WIDTH, max(12, self.query_one("#example-detail").size.width // 2 - 2))
        picture = graphics_widget(data) if data else None
        holder.display, graphics.display = picture is None, picture is not None
        if picture is not None:  # Kitty or Sixel: the real pixels
            graphics.styles.width, graphics.styles.height = width + 1, IMAGE_HEIGHT
            graphics.mount(picture)
        else:
            holder.styles.width = width + 1
            holder.update(image_halfblocks(data, width, IMAGE_HEIGHT))

    def show_example(self, index: int) -> None:
        if not (0 <= index < len(self.views)):
            return
        view = self.views[index]
        colors = theme_colors(self.app)
        self._show_image(view)
        text = Text.assemble(
            (view.example_id, "dim"), "\n",
            ("Q: ", "bold"), view.question, "\n",
            ("Reference: ", "bold"), (view.reference, f"bold {colors['winner']}"),
            (f"  ({view.answer_type})" if view.answer_type else "", "dim"),
        )  # fmt: skip
        if view.choices:
            text.append("\nchoices: " + " / ".join(str(c) for c in view.choices), style="dim")
        if view.image_sha256 and GRAPHICS == "halfblocks":
            text.append("\nv opens the image in your image viewer", style="dim")
        self.query_one("#example-text", Static).update(text)
        answers = self.query_one("#example-answers", DataTable)
        answers.clear()
        for a in view.answers:
            if a.error_kind:
                answer = Text(f"error: {a.error_kind}", style=colors["error"])
            elif a.answer is None:
                answer = Text("not asked", style="dim")
            else:
                answer = Text(str(a.answer), style=colors["winner"] if a.correct else "")
            answers.add_row(
                Text("▶", style="bold") if a.chosen else "",
                Text(a.model, style="bold" if a.chosen else ""),
                fmt.quality(a.predicted),
                fmt.quality(a.score) if a.score is not None else fmt.DASH,
                fmt.ms(a.latency_ms),
                answer,
            )
        self.query_one("#example-top").display = True
        answers.display = True

    @on(DataTable.RowHighlighted, "#examples-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_example(event.cursor_row)

    def action_next_filter(self) -> None:
        self.only = EXAMPLE_FILTERS[(EXAMPLE_FILTERS.index(self.only) + 1) % len(EXAMPLE_FILTERS)]
        self._reload()

    def action_next_group(self) -> None:
        groups: list[str | None] = [None, *self.routed.tasks]
        self.task_group = groups[(groups.index(self.task_group) + 1) % len(groups)]
        self._reload()

    def _reload(self) -> None:
        self.loaded = False
        self._show_title()
        self.load()

    def action_view_image(self) -> None:
        view = self.current()
        path = self._paths.get(view.image_sha256) if view and view.image_sha256 else None
        if path is None:
            self.notify("This example has no stored image.", severity="warning", markup=False)
            return
        problem = open_in_viewer(path)
        if problem:
            self.notify(problem, severity="error", markup=False)
        else:
            self.notify(f"Opened {path} in the image viewer.", markup=False)

    def action_detail(self) -> None:
        if self.model:
            from lrcal.tui.detail_view import ModelDetailScreen

            self.app.push_screen(ModelDetailScreen(self.model))
