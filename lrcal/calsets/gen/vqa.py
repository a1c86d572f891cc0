"""General visual questions: colours, shapes, sizes and existence in shape scenes, and
simple drawn scenes (house, trees, sky, car) with attribute, counting and yes/no questions."""

from __future__ import annotations

from PIL import Image, ImageDraw

from lrcal.calsets.gen.render import (
    COLOURS,
    SHAPES,
    Ctx,
    Item,
    article,
    attempts,
    canvas_size,
    draw_shape,
    finish,
    jitter,
    light_background,
    place_apart,
)

_NAMED = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "gray")


def _shapes_scene(ctx: Ctx, specs: list[tuple[str, str, float]]):
    """Draw (shape, colour, radius) objects at separated random places."""
    w, h = canvas_size(ctx, 300, 560)
    img = Image.new("RGB", (w, h), light_background(ctx))
    draw = ImageDraw.Draw(img)
    biggest = max(r for _, _, r in specs)
    scale = 1.0
    points = None
    while points is None:
        points = place_apart(ctx, len(specs), w, h, biggest * scale * 1.3, margin=biggest * scale * 1.4 + 4)
        if points is None:
            scale *= 0.85
    for (shape, colour, r), (x, y) in zip(specs, points):
        outline = (40, 40, 40) if colour in ("yellow", "gray", "pink") else None
        draw_shape(draw, shape, x, y, r * scale, jitter(COLOURS[colour], ctx, 10), outline, ctx.rng.uniform(-20, 20))
    ctx.diff.add((len(specs) - 1) / 7, 1.5)
    ctx.diff.add((34 - biggest * scale) / 22, 1.0)
    return img


def _distinct_specs(ctx: Ctx, n: int, unique_shapes: bool) -> list[tuple[str, str, float]]:
    shapes = ctx.sample(SHAPES, n) if unique_shapes else [ctx.choice(SHAPES) for _ in range(n)]
    colours = ctx.sample(_NAMED, n)
    radius = ctx.lerp(34, 14)
    return [(s, c, radius * ctx.rng.uniform(0.85, 1.15)) for s, c in zip(shapes, colours)]


def shape_colour(ctx: Ctx) -> Item:
    specs = _distinct_specs(ctx, ctx.ilerp(1, 6), unique_shapes=True)
    shape, colour, _ = ctx.choice(specs)
    img = finish(_shapes_scene(ctx, specs), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"What colour is the {shape}?",
            f"Which colour does the {shape} have?",
            f"What is the colour of the {shape} in the picture?",
        )
    )
    return ctx.item(img, question, colour, "exact")


def colour_shape(ctx: Ctx) -> Item:
    specs = _distinct_specs(ctx, ctx.ilerp(1, 6), unique_shapes=True)
    shape, colour, _ = ctx.choice(specs)
    choices = ctx.sample([s for s in SHAPES if s != shape], 3) + [shape]
    ctx.rng.shuffle(choices)
    img = finish(_shapes_scene(ctx, specs), ctx, noise=0.03)
    question = ctx.choice((f"What shape is the {colour} object?", f"Which shape is drawn in {colour}?"))
    return ctx.item(img, question, shape, "multiple_choice", choices=choices)


def exists(ctx: Ctx) -> Item:
    specs = _distinct_specs(ctx, ctx.ilerp(2, 7), unique_shapes=False)
    present = {(s, c) for s, c, _ in specs}
    if ctx.coin():
        shape, colour, _ = ctx.choice(specs)
        answer = "yes"
    else:  # a near miss: a shape or colour that is in the scene, in another combination
        for _ in attempts():
            shape = ctx.choice([s for s, _, _ in specs]) if ctx.coin() else ctx.choice(SHAPES)
            colour = ctx.choice([c for _, c, _ in specs]) if ctx.coin() else ctx.choice(_NAMED)
            if (shape, colour) not in present:
                break
        answer = "no"
    img = finish(_shapes_scene(ctx, specs), ctx, noise=0.03)
    a = article(colour)
    question = ctx.choice(
        (
            f"Is there {a} {colour} {shape} in the image?",
            f"Does the picture contain {a} {colour} {shape}?",
            f"Can you see {a} {colour} {shape}?",
        )
    )
    return ctx.item(img, question, answer, "yes_no")


def size_compare(ctx: Ctx) -> Item:
    shape = ctx.choice(SHAPES)
    colours = ctx.sample(_NAMED, 2)
    ratio = ctx.lerp(1.8, 1.12)
    small = ctx.rng.uniform(16, 30)
    sizes = [small * ratio, small] if ctx.coin() else [small, small * ratio]
    extra = [(s, c, ctx.rng.uniform(12, 30)) for s, c in zip(ctx.sample([x for x in SHAPES if x != shape], 3), ctx.sample([c for c in _NAMED if c not in colours], 3))][: ctx.ilerp(0, 3)]
    specs = [(shape, colours[0], sizes[0]), (shape, colours[1], sizes[1])] + extra
    img = finish(_shapes_scene(ctx, specs), ctx, noise=0.03)
    larger = colours[0] if sizes[0] > sizes[1] else colours[1]
    ask_larger = ctx.coin()
    target = larger if ask_larger else (colours[1] if larger == colours[0] else colours[0])
    question = ctx.choice(
        (
            f"Which is {'larger' if ask_larger else 'smaller'}: the {colours[0]} {shape} or the {colours[1]} {shape}?",
            f"Of the two {shape}s, which one is {'bigger' if ask_larger else 'smaller'}, the {colours[0]} or the {colours[1]} one?",
        )
    )
    ctx.diff.add((1.8 - ratio) / 0.68, 1.5)
    return ctx.item(img, question, f"{target} {shape}", "multiple_choice", choices=[f"{colours[0]} {shape}", f"{colours[1]} {shape}"])


# ---- drawn scenes --------------------------------------------------------------------


class _Scene:
    def __init__(self, ctx: Ctx):
        self.night = ctx.coin(0.35)
        self.trees = ctx.rng.randint(0, int(ctx.lerp(2, 5)))
        self.roof = ctx.choice(("red", "brown", "blue", "gray", "black", "green"))
        self.door = ctx.choice([c for c in ("red", "blue", "green", "yellow", "brown", "black") if c != self.roof])
        self.walls = ctx.choice(((235, 220, 180), (240, 240, 235), (210, 180, 150), (200, 210, 225)))
        self.car = ctx.choice((None, "red", "blue", "yellow", "green", "black", "orange"))
        self.clouds = 0 if self.night else ctx.rng.randint(0, 3)
        self.birds = 0 if self.night else ctx.rng.randint(0, int(ctx.lerp(1, 5)))

    def draw(self, ctx: Ctx) -> Image.Image:
        w, h = canvas_size(ctx, 360, 620, (1.15, 1.6))
        sky = (20, 30, 70) if self.night else (135 + ctx.rng.randint(0, 40), 190 + ctx.rng.randint(0, 30), 235)
        img = Image.new("RGB", (w, h), sky)
        d = ImageDraw.Draw(img)
        ground_y = int(h * ctx.rng.uniform(0.68, 0.78))
        d.rectangle((0, ground_y, w, h), fill=(40, 90, 40) if self.night else (90, 160, 70))
        if self.night:
            mx, my = w * ctx.rng.uniform(0.7, 0.9), h * 0.15
            d.ellipse((mx - 18, my - 18, mx + 18, my + 18), fill=(245, 245, 210))
            d.ellipse((mx - 10, my - 22, mx + 24, my + 12), fill=sky)
            for _ in range(ctx.rng.randint(5, 15)):
                sx, sy = ctx.rng.uniform(0, w), ctx.rng.uniform(0, ground_y * 0.6)
                d.point((sx, sy), fill=(255, 255, 230))
                d.point((sx + 1, sy), fill=(255, 255, 230))
        else:
            sx, sy = w * ctx.rng.uniform(0.72, 0.9), h * 0.14
            d.ellipse((sx - 22, sy - 22, sx + 22, sy + 22), fill=(255, 215, 40))
            for _ in range(self.clouds):
                cx, cy = ctx.rng.uniform(30, w * 0.6), ctx.rng.uniform(20, h * 0.3)
                for dx in (-18, 0, 18):
                    d.ellipse((cx + dx - 16, cy - 12, cx + dx + 16, cy + 12), fill=(250, 250, 250))
            for _ in range(self.birds):
                bx, by = ctx.rng.uniform(40, w - 40), ctx.rng.uniform(25, ground_y * 0.5)
                d.line([(bx - 7, by - 4), (bx, by), (bx + 7, by - 4)], fill=(30, 30, 30), width=2)
        hx = w * ctx.rng.uniform(0.12, 0.3)
        hw, hh = w * 0.28, h * 0.22
        d.rectangle((hx, ground_y - hh, hx + hw, ground_y), fill=self.walls, outline=(60, 60, 60))
        d.polygon([(hx - 10, ground_y - hh), (hx + hw / 2, ground_y - hh - hh * 0.7), (hx + hw + 10, ground_y - hh)], fill=COLOURS[self.roof])
        d.rectangle((hx + hw * 0.4, ground_y - hh * 0.55, hx + hw * 0.6, ground_y), fill=COLOURS[self.door])
        window = (250, 230, 120) if self.night else (180, 220, 250)
        d.rectangle((hx + hw * 0.1, ground_y - hh * 0.8, hx + hw * 0.3, ground_y - hh * 0.55), fill=window, outline=(60, 60, 60))
        d.rectangle((hx + hw * 0.7, ground_y - hh * 0.8, hx + hw * 0.9, ground_y - hh * 0.55), fill=window, outline=(60, 60, 60))
        tree_x = hx + hw + 30
        for i in range(self.trees):
            tx = tree_x + i * ((w - tree_x - 30) / max(1, self.trees))
            th = h * ctx.rng.uniform(0.14, 0.22)
            d.rectangle((tx - 4, ground_y - th * 0.45, tx + 4, ground_y + 4), fill=(110, 70, 30))
            d.ellipse((tx - th * 0.3, ground_y - th, tx + th * 0.3, ground_y - th * 0.35), fill=(30, 110 + ctx.rng.randint(0, 40), 40))
        if self.car:
            cx = w * ctx.rng.uniform(0.35, 0.75)
            cy = ground_y + (h - ground_y) * 0.55
            d.rounded_rectangle((cx - 40, cy - 14, cx + 40, cy + 10), radius=6, fill=COLOURS[self.car])
            d.rounded_rectangle((cx - 22, cy - 28, cx + 20, cy - 12), radius=5, fill=COLOURS[self.car])
            for wx in (cx - 24, cx + 24):
                d.ellipse((wx - 9, cy + 2, wx + 9, cy + 20), fill=(20, 20, 20))
        ctx.diff.add((self.trees + self.clouds + self.birds) / 12, 1.0)
        return img


def scene_attribute(ctx: Ctx) -> Item:
    scene = _Scene(ctx)
    img = finish(scene.draw(ctx), ctx, noise=0.03)
    options = [("roof", scene.roof), ("door", scene.door)] + ([("car", scene.car)] if scene.car else [])
    part, colour = ctx.choice(options)
    question = ctx.choice(
        (
            f"What colour is the {part}{' of the house' if part != 'car' else ''}?",
            f"Which colour is the {part} in this picture?",
        )
    )
    return ctx.item(img, question, colour, "exact")


def scene_count(ctx: Ctx) -> Item:
    scene = _Scene(ctx)
    if scene.night:
        scene.trees = max(scene.trees, 1)
    img = finish(scene.draw(ctx), ctx, noise=0.03)
    what = "trees" if scene.night or ctx.coin(0.6) else ("birds" if ctx.coin() else "clouds")
    count = {"trees": scene.trees, "birds": scene.birds, "clouds": scene.clouds}[what]
    question = ctx.choice((f"How many {what} are in the picture?", f"Count the {what}."))
    return ctx.item(img, question, str(count), "number", tolerance=0.0)


def scene_yes_no(ctx: Ctx) -> Item:
    scene = _Scene(ctx)
    img = finish(scene.draw(ctx), ctx, noise=0.03)
    kind = ctx.rng.randrange(3)
    if kind == 0:
        question = ctx.choice(("Is it night-time in this picture?", "Is this scene set at night?"))
        answer = scene.night
    elif kind == 1:
        question = ctx.choice(("Is there a car in the picture?", "Can you see a car?"))
        answer = scene.car is not None
    else:
        question = ctx.choice(("Is the sun visible?", "Can you see the sun in the sky?"))
        answer = not scene.night
    return ctx.item(img, question, "yes" if answer else "no", "yes_no")


def scene_describe(ctx: Ctx) -> Item:
    scene = _Scene(ctx)
    img = finish(scene.draw(ctx), ctx, noise=0.03)
    if scene.car and ctx.coin():
        question = ctx.choice(("What vehicle is in front of the house? Give its colour too.", "Describe the vehicle in the picture (colour and type)."))
        answer = f"{scene.car} car"
    else:
        question = ctx.choice(("What is shining in the sky?", "Which celestial body is in the sky?"))
        answer = "moon" if scene.night else "sun"
    return ctx.item(img, question, answer, "anls")


SUBTYPES = {
    "shape_colour": shape_colour,
    "colour_shape": colour_shape,
    "exists": exists,
    "size_compare": size_compare,
    "scene_attribute": scene_attribute,
    "scene_count": scene_count,
    "scene_yes_no": scene_yes_no,
    "scene_describe": scene_describe,
}
