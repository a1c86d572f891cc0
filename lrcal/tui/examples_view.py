"""Examples of one routing cell: question, reference answer, the image in half blocks, every
model's stored answer and score, and the router's scores."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lrcal.tui import fmt
from lrcal.services.review import ExampleView, RoutingSnapshot, RoutingTable
from lrcal.tui.halfblocks import image_halfblocks
from lrcal.tui.widgets import Notice, theme_colors

IMAGE_WIDTH = 30
IMAGE_HEIGHT = 12


class ExamplesScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "detail", "Model"),
    ]

    def __init__(self, snap: RoutingSnapshot, routed: RoutingTable, task: str, model: str | None) -> None:
        super().__init__()
        self.snap, self.routed, self.task_group, self.model = snap, routed, task, model
        self.views: list[ExampleView] = []
        self._images: dict[str, bytes | None] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="examples-title")
        with Horizontal(id="examples-body"):
            yield DataTable(id="examples-list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="example-detail"):
                yield Notice("Loading examples…", id="examples-message")
                with Horizontal(id="example-top"):
                    yield Static(id="example-image")
                    yield Static(id="example-text")
                yield DataTable(id="example-answers", cursor_type="none", zebra_stripes=True, show_cursor=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        who = f"routed to {self.model}" if self.model else "all models"
        self.sub_title = f"{self.task_group} · {who}"
        self.query_one("#examples-title", Static).update(
            Text.assemble(
                (f"{self.task_group}", "bold"),
                f" queries {who} at λ cost {fmt.lam(self.routed.lambda_cost)}, "
                f"λ latency {fmt.lam(self.routed.lambda_latency)} · ",
                ("▶", "bold"),
                " = the router's choice, μ̃ = its predicted quality",
            )
        )
        listing = self.query_one("#examples-list", DataTable)
        listing.add_column("example", width=16)
        listing.add_column("score", width=5)
        answers = self.query_one("#example-answers", DataTable)
        for label, width in (("", 1), ("model", 17), ("μ̃", 3), ("score", 5), ("latency", 7), ("answer", 30)):
            answers.add_column(label, width=width)
        self.query_one("#example-top").display = False
        self.query_one("#example-answers").display = False
        self.load()

    @work(thread=True, exclusive=True, group="examples")
    def load(self) -> None:
        with self.app.service.connect() as review:
            views = review.examples_for(self.snap, self.task_group, self.model, routed=self.routed)
            images = {v.image_sha256: review.image_bytes(v.image_sha256) for v in views if v.image_sha256}
        self.app.call_from_thread(self.show_examples, views, images)

    def show_examples(self, views: list[ExampleView], images: dict[str, bytes | None]) -> None:
        self.views, self._images = views, images
        listing = self.query_one("#examples-list", DataTable)
        listing.clear()
        if not views:
            self.query_one("#examples-message", Notice).update(
                f"The router sends none of the {self.task_group} queries to {self.model} at these λ."
            )
            return
        self.query_one("#examples-message").display = False
        for view in views:
            chosen = next((a for a in view.answers if a.chosen), None)
            score = fmt.quality(chosen.score) if chosen else fmt.DASH
            short = view.example_id.rsplit("-", 2)
            label = "-".join(short[-2:]) if len(short) >= 2 else view.example_id
            listing.add_row(label, score, key=str(view.pk))
        listing.focus()
        self.show_example(0)

    def show_example(self, index: int) -> None:
        if not (0 <= index < len(self.views)):
            return
        view = self.views[index]
        colors = theme_colors(self.app)
        # The image takes up to IMAGE_WIDTH columns, less on a narrow terminal (text needs room too).
        width = min(IMAGE_WIDTH, max(12, self.query_one("#example-detail").size.width // 2 - 2))
        self.query_one("#example-image").styles.width = width + 1
        image = image_halfblocks(self._images.get(view.image_sha256) if view.image_sha256 else None,
                                 width, IMAGE_HEIGHT)  # fmt: skip
        self.query_one("#example-image", Static).update(image)
        text = Text.assemble(
            (view.example_id, "dim"), "\n",
            ("Q: ", "bold"), view.question, "\n",
            ("Reference: ", "bold"), (view.reference, f"bold {colors['winner']}"),
            (f"  ({view.answer_type})" if view.answer_type else "", "dim"),
        )  # fmt: skip
        if view.choices:
            text.append("\nchoices: " + " / ".join(str(c) for c in view.choices), style="dim")
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

    def action_detail(self) -> None:
        if self.model:
            from lrcal.tui.detail_view import ModelDetailScreen

            self.app.push_screen(ModelDetailScreen(self.model))

