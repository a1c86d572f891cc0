"""Charts drawn with pillow: bar, line and pie charts; read a value, compare, count, and
take differences. Unlabelled values must be read against gridlines (number answers then
carry a tolerance of about a third of a gridline step)."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from lrcal.calsets.gen import vocab
from lrcal.calsets.gen.render import (
    CHART_COLOURS,
    Ctx,
    Item,
    canvas_size,
    finish,
    fit_size,
    font,
    jitter,
    light_background,
    paste_text,
    text_width,
)

_TITLES = {
    "fruit": ("Fruit sold (boxes)", "Harvest by fruit", "Boxes shipped"),
    "city": ("Visitors by city (k)", "New stores per city", "Rainy days by city"),
    "team": ("Points by team", "Goals scored", "Wins this season"),
    "product": ("Units sold by product", "Downloads by app", "Orders by product"),
    "region": ("Sales by region", "Staff per region", "Deliveries by region"),
    "channel": ("Revenue by channel", "Signups by channel", "Tickets by channel"),
}
_SERIES = ("Revenue", "Visitors", "Rainfall (mm)", "Orders", "Members", "Temperature")


def _nice_step(maximum: float, ticks: int = 5) -> float:
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Axes:
    """A plot area with a y axis from 0 to ``top`` (gridlines every ``step``)."""

    def __init__(self, ctx: Ctx, img: Image.Image, top: float, step: float, label_size: int, title: str):
        self.img = img
        self.draw = ImageDraw.Draw(img)
        w, h = img.size
        self.label_size = label_size
        tick_w = text_width(_fmt(top), label_size)
        self.x0, self.x1 = 14 + tick_w, w - 16
        self.y0, self.y1 = h - 48, 40
        self.top, self.step = top, step
        ink = (60, 60, 60)
        grid = (215, 215, 215)
        title_size = fit_size(title, label_size + 4, w - 20)
        self.draw.text((w / 2, 14), title, fill=(30, 30, 30), font=font(title_size), anchor="mt")
        value = 0.0
        while value <= top + 1e-9:
            y = self.y(value)
            self.draw.line((self.x0, y, self.x1, y), fill=grid if value else ink, width=1)
            self.draw.text((self.x0 - 5, y), _fmt(value), fill=ink, font=font(label_size), anchor="rm")
            value += step
        self.draw.line((self.x0, self.y0, self.x0, self.y1), fill=ink, width=1)

    def y(self, value: float) -> float:
        return self.y0 - (self.y0 - self.y1) * value / self.top


def _values_for(ctx: Ctx, n: int, top_hint: int, distinct_gap: float) -> list[int]:
    """``n`` integer values with a unique max and min separated by ``distinct_gap``."""
    for _ in range(200):
        values = [ctx.rng.randint(max(1, top_hint // 10), top_hint) for _ in range(n)]
        ordered = sorted(values)
        if ordered[-1] - ordered[-2] >= distinct_gap and ordered[1] - ordered[0] >= distinct_gap:
            return values
    values = sorted({ctx.rng.randint(1, top_hint) for _ in range(3 * n)})[:n]
    ctx.rng.shuffle(values)
    return values


def _bar_chart(ctx: Ctx, n: int, labelled: bool, gridded_values: bool):
    pool_name = ctx.choice(sorted(k for k, v in vocab.CATEGORY_POOLS.items() if len(v) >= n))
    categories = ctx.sample(vocab.CATEGORY_POOLS[pool_name], n)
    top_hint = ctx.choice((10, 20, 50, 100, 200, 500, 1000))
    step = _nice_step(top_hint)
    if gridded_values:  # on gridlines or half-way: readable without labels
        half = step / 2
        values = []
        while len(values) < n:
            v = half * ctx.rng.randint(1, int(top_hint / half))
            values.append(int(v) if float(v).is_integer() else v)
    else:
        values = _values_for(ctx, n, top_hint, max(1, top_hint // 20))
    top = step * math.ceil(max(values) / step)
    if top == max(values):
        top += step
    w, h = canvas_size(ctx, 360, 640, (1.1, 1.6))
    img = Image.new("RGB", (w, h), light_background(ctx))
    label_size = int(round(ctx.lerp(15, 10)))
    title = ctx.choice(_TITLES[pool_name])
    axes = _Axes(ctx, img, top, step, label_size, title)
    slot = (axes.x1 - axes.x0) / n
    bar_w = slot * ctx.rng.uniform(0.5, 0.75)
    per_bar_colour = ctx.coin(0.4)
    base = ctx.choice(CHART_COLOURS)
    crowded = max(text_width(c, label_size) for c in categories) > slot * 0.95
    for i, (cat, value) in enumerate(zip(categories, values)):
        cx = axes.x0 + slot * (i + 0.5)
        colour = jitter(CHART_COLOURS[i % len(CHART_COLOURS)] if per_bar_colour else base, ctx, 8)
        axes.draw.rectangle((cx - bar_w / 2, axes.y(value), cx + bar_w / 2, axes.y0), fill=colour)
        if labelled:
            axes.draw.text((cx, axes.y(value) - 3), _fmt(value), fill=(30, 30, 30), font=font(label_size), anchor="mb")
        if crowded:
            paste_text(img, cat, label_size, (40, 40, 40), (cx, axes.y0 + 20), angle=30)
        else:
            axes.draw.text((cx, axes.y0 + 6), cat, fill=(40, 40, 40), font=font(label_size), anchor="mt")
    ctx.diff.add((15 - label_size) / 5, 1.0)
    ctx.diff.add((n - 3) / 5, 1.0)
    ctx.diff.add(0.0 if labelled else 1.0, 1.5)
    return img, categories, values, step


def _tolerance(labelled: bool, step: float, value: float) -> float:
    if labelled:
        return 0.0
    return round(min(0.5, step / 3 / max(abs(value), 1e-9)), 3)


def bar_value(ctx: Ctx) -> Item:
    labelled = ctx.coin(0.8 - 0.6 * ctx.level)
    n = ctx.ilerp(3, 8)
    img, cats, values, step = _bar_chart(ctx, n, labelled, gridded_values=not labelled)
    k = ctx.rng.randrange(n)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"What is the value of {cats[k]} in the bar chart?",
            f"How high is the bar for {cats[k]}?",
            f"According to the chart, what value does {cats[k]} have?",
        )
    )
    return ctx.item(img, question, _fmt(values[k]), "number", tolerance=_tolerance(labelled, step, values[k]))


def bar_extreme(ctx: Ctx) -> Item:
    n = ctx.ilerp(3, 8)
    img, cats, values, _ = _bar_chart(ctx, n, labelled=ctx.coin(0.5), gridded_values=False)
    highest = ctx.coin()
    target = cats[values.index(max(values) if highest else min(values))]
    choices = cats if n <= 5 else sorted(ctx.sample([c for c in cats if c != target], 3) + [target], key=cats.index)
    img = finish(img, ctx, noise=0.03)
    word = "highest" if highest else "lowest"
    question = ctx.choice(
        (
            f"Which category has the {word} value?",
            f"Which bar is the {'tallest' if highest else 'shortest'}?",
            f"In this chart, which item has the {word} value?",
        )
    )
    return ctx.item(img, question, target, "multiple_choice", choices=list(choices))


def bar_difference(ctx: Ctx) -> Item:
    labelled = ctx.coin(0.85 - 0.6 * ctx.level)
    n = ctx.ilerp(3, 7)
    img, cats, values, step = _bar_chart(ctx, n, labelled, gridded_values=not labelled)
    pairs = [(a, b) for a in range(n) for b in range(n) if values[a] > values[b]]
    i, j = ctx.choice(pairs)
    if values[i] < values[j]:
        i, j = j, i
    diff = values[i] - values[j]
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"How much larger is {cats[i]} than {cats[j]}?",
            f"What is the difference between {cats[i]} and {cats[j]}?",
            f"By how much does {cats[i]} exceed {cats[j]}?",
        )
    )
    tolerance = 0.0 if labelled else round(min(0.5, step / 2 / max(diff, 1e-9)), 3)
    return ctx.item(img, question, _fmt(diff), "number", tolerance=tolerance)


def bar_count_above(ctx: Ctx) -> Item:
    n = ctx.ilerp(4, 8)
    img, cats, values, step = _bar_chart(ctx, n, labelled=ctx.coin(0.5), gridded_values=False)
    # a gridline threshold that no bar sits close to
    candidates = []
    value = step
    while value < max(values):
        if all(abs(v - value) >= step / 4 for v in values):
            candidates.append(value)
        value += step
    threshold = ctx.choice(candidates) if candidates else step * 0.5
    count = sum(v > threshold for v in values)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"How many bars are above {_fmt(threshold)}?",
            f"How many categories have a value greater than {_fmt(threshold)}?",
        )
    )
    ctx.diff.add(0.6, 0.5)
    return ctx.item(img, question, str(count), "number", tolerance=0.0)


def _line_chart(ctx: Ctx):
    n = ctx.ilerp(4, 10)
    if ctx.coin():
        start = ctx.rng.randint(2001, 2024 - n)
        labels = [str(start + i) for i in range(n)]
        unit = "year"
    else:
        start = ctx.rng.randrange(12 - n + 1) if n <= 12 else 0
        labels = vocab.MONTHS[start : start + n]
        unit = "month"
    top_hint = ctx.choice((10, 50, 100, 500))
    values = _values_for(ctx, n, top_hint, max(1, top_hint // 15))
    step = _nice_step(top_hint)
    top = step * math.ceil(max(values) / step)
    if top == max(values):
        top += step
    w, h = canvas_size(ctx, 380, 640, (1.2, 1.7))
    img = Image.new("RGB", (w, h), light_background(ctx))
    label_size = int(round(ctx.lerp(14, 10)))
    series = ctx.choice(_SERIES)
    axes = _Axes(ctx, img, top, step, label_size, f"{series} per {unit}")
    slot = (axes.x1 - axes.x0) / n
    colour = jitter(ctx.choice(CHART_COLOURS), ctx, 8)
    points = [(axes.x0 + slot * (i + 0.5), axes.y(v)) for i, v in enumerate(values)]
    axes.draw.line(points, fill=colour, width=ctx.rng.choice((2, 3)))
    labelled = ctx.coin(0.7 - 0.5 * ctx.level)
    for (x, y), label, v in zip(points, labels, values):
        axes.draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        axes.draw.text((x, axes.y0 + 6), label, fill=(40, 40, 40), font=font(label_size), anchor="mt")
        if labelled:
            axes.draw.text((x, y - 6), _fmt(v), fill=(30, 30, 30), font=font(label_size), anchor="mb")
    ctx.diff.add((14 - label_size) / 4, 1.0)
    ctx.diff.add((n - 4) / 6, 1.0)
    ctx.diff.add(0.0 if labelled else 1.0, 1.0)
    return img, labels, values, unit, series


def line_peak(ctx: Ctx) -> Item:
    img, labels, values, unit, series = _line_chart(ctx)
    highest = ctx.coin(0.6)
    target = labels[values.index(max(values) if highest else min(values))]
    img = finish(img, ctx, noise=0.03)
    word = "highest" if highest else "lowest"
    question = ctx.choice(
        (
            f"In which {unit} was the value {word}?",
            f"Which {unit} shows the {word} {series.split(' (')[0].lower()}?",
            f"At which {unit} does the line reach its {'peak' if highest else 'lowest point'}?",
        )
    )
    return ctx.item(img, question, target, "exact")


def line_trend(ctx: Ctx) -> Item:
    img, labels, values, unit, _ = _line_chart(ctx)
    pairs = [(i, i + 1) for i in range(len(values) - 1) if values[i] != values[i + 1]]
    i, j = ctx.choice(pairs)
    if ctx.coin(0.3) and len(values) > 3:  # a non-adjacent comparison
        i, j = sorted(ctx.sample(range(len(values)), 2))
        if values[i] == values[j]:
            j = i + 1
    increased = values[j] > values[i]
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Is the value in {labels[j]} higher than in {labels[i]}?",
            f"Did the value increase from {labels[i]} to {labels[j]}?",
        )
    )
    return ctx.item(img, question, "yes" if increased else "no", "yes_no")


def _pie(ctx: Ctx):
    n = ctx.ilerp(3, 7)
    pool_name = ctx.choice(sorted(k for k, v in vocab.CATEGORY_POOLS.items() if len(v) >= n))
    cats = ctx.sample(vocab.CATEGORY_POOLS[pool_name], n)
    for _ in range(200):  # whole percentages summing to 100 with a unique largest slice
        cuts = sorted(ctx.sample(range(1, 100), n - 1))
        shares = [b - a for a, b in zip([0] + cuts, cuts + [100])]
        ordered = sorted(shares)
        if min(shares) >= 3 and ordered[-1] - ordered[-2] >= 2:
            break
    w, h = canvas_size(ctx, 360, 600, (1.2, 1.6))
    img = Image.new("RGB", (w, h), light_background(ctx))
    draw = ImageDraw.Draw(img)
    label_size = int(round(ctx.lerp(15, 10)))
    title = ctx.choice(("Share of sales", "Budget split", "Survey answers", "Market share", "Time spent"))
    draw.text((w / 2, 12), title, fill=(30, 30, 30), font=font(label_size + 3), anchor="mt")
    r = min(w * 0.55, h - 60) / 2
    cx, cy = w * 0.32 + 10, h / 2 + 12
    angle = ctx.rng.uniform(-90, 0)
    colours = ctx.sample(CHART_COLOURS, n)
    for share, colour in zip(shares, colours):
        extent = 360 * share / 100
        draw.pieslice((cx - r, cy - r, cx + r, cy + r), angle, angle + extent, fill=colour, outline=(250, 250, 250))
        angle += extent
    lx = cx + r + 18
    line_h = max(label_size + 6, 16)
    ly = cy - line_h * n / 2
    for cat, share, colour in zip(cats, shares, colours):
        draw.rectangle((lx, ly + 2, lx + 10, ly + 12), fill=colour)
        size = fit_size(f"{cat} {share}%", label_size, int(w - lx - 20))
        draw.text((lx + 15, ly + 7), f"{cat} {share}%", fill=(30, 30, 30), font=font(size), anchor="lm")
        ly += line_h
    ctx.diff.add((15 - label_size) / 5, 1.0)
    ctx.diff.add((n - 3) / 4, 1.0)
    return img, cats, shares


def pie_largest(ctx: Ctx) -> Item:
    img, cats, shares = _pie(ctx)
    largest = ctx.coin(0.7)
    pick = max(shares) if largest else min(shares)
    if shares.count(pick) > 1:
        largest, pick = True, max(shares)
    target = cats[shares.index(pick)]
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Which slice of the pie chart is the {'largest' if largest else 'smallest'}?",
            f"Which category has the {'biggest' if largest else 'smallest'} share?",
        )
    )
    return ctx.item(img, question, target, "multiple_choice", choices=list(cats))


def pie_share(ctx: Ctx) -> Item:
    img, cats, shares = _pie(ctx)
    k = ctx.rng.randrange(len(cats))
    img = finish(img, ctx, noise=0.03)
    if ctx.coin(0.35) and len(cats) >= 3:
        i, j = ctx.sample(range(len(cats)), 2)
        question = f"What is the combined share of {cats[i]} and {cats[j]}, in percent?"
        ctx.diff.add(0.7, 0.5)
        return ctx.item(img, question, str(shares[i] + shares[j]), "number", tolerance=0.0)
    question = ctx.choice(
        (
            f"What percentage does {cats[k]} account for?",
            f"What share of the total is {cats[k]} (in percent)?",
        )
    )
    return ctx.item(img, question, str(shares[k]), "number", tolerance=0.0)


SUBTYPES = {
    "bar_value": bar_value,
    "bar_extreme": bar_extreme,
    "bar_difference": bar_difference,
    "bar_count_above": bar_count_above,
    "line_peak": line_peak,
    "line_trend": line_trend,
    "pie_largest": pie_largest,
    "pie_share": pie_share,
}
