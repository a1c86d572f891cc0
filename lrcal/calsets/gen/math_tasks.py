"""Math read from the image: arithmetic, equations, sequences, geometry figures with
labelled angles and sides, shaded fractions, and checking a written equation."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from lrcal.calsets.gen.render import (
    Ctx,
    Item,
    canvas_size,
    finish,
    fit_size,
    ink_for_contrast,
    light_background,
    paste_text,
)


def _board(ctx: Ctx, lo: int = 300, hi: int = 560):
    w, h = canvas_size(ctx, lo, hi, (1.2, 1.9))
    style = ctx.rng.randrange(3)
    if style == 0:  # whiteboard
        bg = light_background(ctx)
    elif style == 1:  # chalkboard
        bg = (ctx.rng.randint(30, 50), ctx.rng.randint(60, 80), ctx.rng.randint(45, 60))
    else:  # squared paper
        bg = (250, 250, 245)
    img = Image.new("RGB", (w, h), bg)
    if style == 2:
        d = ImageDraw.Draw(img)
        for x in range(0, w, 20):
            d.line((x, 0, x, h), fill=(205, 220, 235))
        for y in range(0, h, 20):
            d.line((0, y, w, y), fill=(205, 220, 235))
    return img, bg


def _write(ctx: Ctx, img: Image.Image, bg, text: str, y_frac: float = 0.5, max_size: int = 48) -> int:
    """Write a line of maths with size, slant and contrast following the difficulty."""
    w, h = img.size
    size = fit_size(text, int(round(ctx.lerp(max_size, 16))), int(w * 0.9))
    angle = ctx.rng.uniform(-1, 1) * ctx.lerp(0, 15) if ctx.coin(0.5) else 0.0
    contrast = ctx.lerp(0.95, 0.55)
    paste_text(img, text, size, ink_for_contrast(bg, contrast, ctx), (w / 2, h * y_frac), angle, shear=ctx.rng.uniform(-0.2, 0.2))
    ctx.diff.add((max_size - size) / (max_size - 16), 1.5)
    ctx.diff.add(abs(angle) / 15, 0.5)
    ctx.diff.add((0.95 - contrast) / 0.4, 0.5)
    return size


def arithmetic(ctx: Ctx) -> Item:
    steps = 1 if ctx.level < 0.6 else ctx.rng.randint(1, 2)
    digits = ctx.ilerp(1, 3)
    hi = 10**digits - 1
    a, b = ctx.rng.randint(2, hi), ctx.rng.randint(2, hi)
    op = ctx.choice(("+", "-", "x", "/"))
    if op == "+":
        value, text = a + b, f"{a} + {b}"
    elif op == "-":
        a, b = max(a, b), min(a, b)
        value, text = a - b, f"{a} - {b}"
    elif op == "x":
        b = ctx.rng.randint(2, 12 if digits > 1 else 9)
        value, text = a * b, f"{a} x {b}"
    else:
        b = ctx.rng.randint(2, 12)
        value, text = a, f"{a * b} / {b}"
    if steps == 2:
        c = ctx.rng.randint(2, 20)
        if ctx.coin():
            value, text = value + c, f"({text}) + {c}"
        else:
            value, text = value * c, f"({text}) x {c}"
    img, bg = _board(ctx)
    _write(ctx, img, bg, f"{text} = ?")
    ctx.diff.add((digits - 1) / 2 + (steps - 1) * 0.5, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("What is the result of the calculation shown?", "Compute the expression in the image.", "What number replaces the question mark?"))
    return ctx.item(img, question, str(value), "number", tolerance=0.0)


def equation(ctx: Ctx) -> Item:
    x = ctx.rng.randint(-9 if ctx.level > 0.5 else 1, 15)
    a = ctx.rng.randint(2, 9)
    b = ctx.rng.randint(1, 30)
    var = ctx.choice(("x", "y", "n", "k"))
    if ctx.coin():
        text = f"{a}{var} + {b} = {a * x + b}"
    else:
        text = f"{a}{var} - {b} = {a * x - b}"
    img, bg = _board(ctx)
    _write(ctx, img, bg, text, 0.45, 44)
    ctx.diff.add(0.5 if x < 0 else 0.2, 1.0)
    img = finish(img, ctx, noise=0.03)
    if ctx.coin(0.4):
        wrong = sorted({x + 1, x - 1, x + 2, x - 2, -x, x + 3} - {x})
        options = [str(o) for o in sorted(ctx.sample(wrong, 3) + [x])]
        question = f"Solve the equation shown for {var}."
        return ctx.item(img, question, str(x), "multiple_choice", choices=options)
    question = ctx.choice((f"Solve for {var}.", f"What value of {var} satisfies the equation in the image?"))
    return ctx.item(img, question, str(x), "number", tolerance=0.0)


def sequence(ctx: Ctx) -> Item:
    kind = ctx.rng.randrange(3 if ctx.level > 0.4 else 2)
    start = ctx.rng.randint(1, 20)
    if kind == 0:
        step = ctx.rng.randint(2, 12)
        terms = [start + step * i for i in range(6)]
    elif kind == 1:
        step = -ctx.rng.randint(2, 9)
        start += 60
        terms = [start + step * i for i in range(6)]
    else:
        ratio = ctx.rng.randint(2, 3)
        start = ctx.rng.randint(1, 5)
        terms = [start * ratio**i for i in range(6)]
    shown = ", ".join(str(t) for t in terms[:5]) + ", ?"
    img, bg = _board(ctx, 340, 600)
    _write(ctx, img, bg, shown, 0.5, 40)
    ctx.diff.add(kind / 2, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("What number comes next in the sequence?", "Which number should replace the question mark?"))
    return ctx.item(img, question, str(terms[5]), "number", tolerance=0.0)


def check_equation(ctx: Ctx) -> Item:
    a, b = ctx.rng.randint(2, 12), ctx.rng.randint(2, 12)
    op = ctx.choice(("+", "x", "-"))
    true_value = {"+": a + b, "x": a * b, "-": a - b}[op]
    correct = ctx.coin()
    shown_value = true_value if correct else true_value + ctx.choice((-2, -1, 1, 2, 10))
    text = f"{a} {op} {b} = {shown_value}"
    img, bg = _board(ctx)
    _write(ctx, img, bg, text)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("Is the equation in the image correct?", "Is the calculation shown true?"))
    return ctx.item(img, question, "yes" if correct else "no", "yes_no")


def _label(img: Image.Image, ctx: Ctx, text: str, xy, size: int, colour=(20, 20, 20)) -> None:
    paste_text(img, text, size, colour, xy)


def triangle_angle(ctx: Ctx) -> Item:
    for _ in range(100):
        A = ctx.rng.randint(25, 110)
        B = ctx.rng.randint(25, 150 - A)
        C = 180 - A - B
        if C >= 20:
            break
    w, h = canvas_size(ctx, 320, 560, (1.1, 1.5))
    img = Image.new("RGB", (w, h), light_background(ctx))
    d = ImageDraw.Draw(img)
    # law of sines on a unit base, then scaled to fit the canvas with margins
    ac = math.sin(math.radians(B)) / math.sin(math.radians(C))
    pts = [(0.0, 0.0), (1.0, 0.0), (ac * math.cos(math.radians(A)), ac * math.sin(math.radians(A)))]
    min_x, max_x = min(p[0] for p in pts), max(p[0] for p in pts)
    max_y = max(p[1] for p in pts)
    scale = min((w - 90) / (max_x - min_x), (h - 90) / max_y)
    ox = (w - (max_x - min_x) * scale) / 2 - min_x * scale
    oy = h - 45 - (h - 90 - max_y * scale) / 2
    (ax, ay), (bx, by), (cx, cy) = [(ox + x * scale, oy - y * scale) for x, y in pts]
    d.polygon([(ax, ay), (bx, by), (cx, cy)], outline=(30, 30, 30), width=2)
    size = int(round(ctx.lerp(20, 12)))
    gx, gy = (ax + bx + cx) / 3, (ay + by + cy) / 3

    def inside(px: float, py: float, dist: float = 30.0) -> tuple[float, float]:
        length = math.hypot(gx - px, gy - py) or 1.0
        return px + (gx - px) * dist / length, py + (gy - py) * dist / length

    _label(img, ctx, f"{A}°", inside(ax, ay, 40), size, (180, 30, 30))
    _label(img, ctx, f"{B}°", inside(bx, by, 40), size, (180, 30, 30))
    _label(img, ctx, "?", inside(cx, cy, 30), size + 2, (30, 30, 160))
    _label(img, ctx, "A", (ax - 10, ay + 12), size)
    _label(img, ctx, "B", (bx + 10, by + 12), size)
    _label(img, ctx, "C", (cx, max(10, cy - 14)), size)
    ctx.diff.add((20 - size) / 8, 1.0)
    ctx.diff.add(0.4, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("What is the measure of angle C in degrees?", "Find the missing angle C of the triangle.", "How many degrees is the angle marked '?'"))
    return ctx.item(img, question, str(C), "number", tolerance=0.0)


def rectangle(ctx: Ctx) -> Item:
    a, b = ctx.rng.randint(2, 25), ctx.rng.randint(2, 25)
    unit = ctx.choice(("cm", "m", "in", ""))
    w, h = canvas_size(ctx, 320, 560, (1.1, 1.6))
    img = Image.new("RGB", (w, h), light_background(ctx))
    d = ImageDraw.Draw(img)
    scale = min((w * 0.6) / max(a, b), (h * 0.55) / max(a, b))
    rw, rh = max(a * scale, 30), max(b * scale, 30)
    x0, y0 = (w - rw) / 2, (h - rh) / 2
    d.rectangle((x0, y0, x0 + rw, y0 + rh), outline=(30, 30, 30), width=2, fill=(225, 235, 250) if ctx.coin() else None)
    size = int(round(ctx.lerp(20, 12)))
    _label(img, ctx, f"{a} {unit}".strip(), (x0 + rw / 2, y0 + rh + 16), size)
    _label(img, ctx, f"{b} {unit}".strip(), (x0 + rw + 10 + size, y0 + rh / 2), size)
    ask = ctx.choice(("area", "perimeter"))
    value = a * b if ask == "area" else 2 * (a + b)
    ctx.diff.add((20 - size) / 8, 1.0)
    ctx.diff.add(0.3 if ask == "area" else 0.5, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice((f"What is the {ask} of the rectangle?", f"Compute the {ask} of the rectangle shown."))
    return ctx.item(img, question, str(value), "number", tolerance=0.0)


def right_triangle(ctx: Ctx) -> Item:
    a, b = ctx.rng.randint(3, 20), ctx.rng.randint(3, 20)
    hyp = math.hypot(a, b)
    w, h = canvas_size(ctx, 320, 560, (1.1, 1.6))
    img = Image.new("RGB", (w, h), light_background(ctx))
    d = ImageDraw.Draw(img)
    scale = min(w * 0.6 / a, h * 0.6 / b)
    ox, oy = w * 0.2, h * 0.8
    px, py = ox + a * scale, oy
    qx, qy = ox, oy - b * scale
    d.polygon([(ox, oy), (px, py), (qx, qy)], outline=(30, 30, 30), width=2)
    d.rectangle((ox, oy - 14, ox + 14, oy), outline=(30, 30, 30))
    size = int(round(ctx.lerp(20, 12)))
    _label(img, ctx, str(a), ((ox + px) / 2, oy + 16), size)
    _label(img, ctx, str(b), (ox - 18, (oy + qy) / 2), size)
    _label(img, ctx, "?", ((px + qx) / 2 + 16, (py + qy) / 2 - 12), size + 2, (30, 30, 160))
    ctx.diff.add((20 - size) / 8, 1.0)
    ctx.diff.add(0.7, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("What is the length of the hypotenuse? Round to two decimals.", "How long is the side marked '?' (to two decimal places)?"))
    return ctx.item(img, question, f"{hyp:.2f}".rstrip("0").rstrip("."), "number", tolerance=0.01)


def circle(ctx: Ctx) -> Item:
    r = ctx.rng.randint(2, 15)
    w, h = canvas_size(ctx, 300, 520, (1.0, 1.4))
    img = Image.new("RGB", (w, h), light_background(ctx))
    d = ImageDraw.Draw(img)
    cx, cy = w / 2, h / 2
    R = min(w, h) * 0.35
    d.ellipse((cx - R, cy - R, cx + R, cy + R), outline=(30, 30, 30), width=2)
    d.line((cx, cy, cx + R, cy), fill=(180, 30, 30), width=2)
    d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(30, 30, 30))
    size = int(round(ctx.lerp(20, 12)))
    use_diameter = ctx.coin(0.3 + 0.4 * ctx.level)
    _label(img, ctx, f"d = {2 * r}" if use_diameter else f"r = {r}", (cx + R / 2, cy - 14), size, (180, 30, 30))
    ask = ctx.choice(("area", "circumference"))
    value = math.pi * r * r if ask == "area" else 2 * math.pi * r
    ctx.diff.add((20 - size) / 8, 1.0)
    ctx.diff.add(0.8 if use_diameter else 0.5, 1.0)
    img = finish(img, ctx, noise=0.03)
    question = f"What is the {ask} of the circle? Round to one decimal."
    return ctx.item(img, question, f"{value:.1f}", "number", tolerance=0.01)


def fraction_shaded(ctx: Ctx) -> Item:
    rows, cols = ctx.ilerp(1, 4), ctx.ilerp(2, 6)
    total = rows * cols
    shaded = ctx.rng.randint(1, total - 1)
    w, h = canvas_size(ctx, 300, 520, (1.1, 1.6))
    img = Image.new("RGB", (w, h), light_background(ctx))
    d = ImageDraw.Draw(img)
    cell = min((w * 0.8) / cols, (h * 0.7) / rows)
    x0, y0 = (w - cell * cols) / 2, (h - cell * rows) / 2
    cells = ctx.sample(range(total), shaded)
    fill = ctx.choice(((60, 120, 200), (220, 80, 60), (80, 160, 90), (150, 90, 180)))
    for i in range(total):
        r, c = divmod(i, cols)
        box = (x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell)
        d.rectangle(box, fill=fill if i in cells else (255, 255, 255), outline=(40, 40, 40), width=2)
    ctx.diff.add((total - 2) / 22, 1.5)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(("What fraction of the grid is shaded?", "What fraction of the squares are coloured in?"))
    return ctx.item(img, question, f"{shaded / total:.4f}".rstrip("0").rstrip("."), "number", tolerance=0.01)


SUBTYPES = {
    "arithmetic": arithmetic,
    "equation": equation,
    "sequence": sequence,
    "check_equation": check_equation,
    "triangle_angle": triangle_angle,
    "rectangle": rectangle,
    "right_triangle": right_triangle,
    "circle": circle,
    "fraction_shaded": fraction_shaded,
}
