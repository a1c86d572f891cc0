"""Spatial reasoning over scenes of coloured shapes: relative position, counting,
nearest object, extremes and quadrants. More objects, smaller shapes and clutter
make them harder."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from lrcal.calsets.gen.render import (
    COLOURS,
    SHAPES,
    attempts,
    Ctx,
    Item,
    canvas_size,
    draw_shape,
    finish,
    jitter,
    light_background,
    place_apart,
)

_SCENE_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "gray")


class _Obj:
    def __init__(self, shape: str, colour: str, x: float, y: float, r: float):
        self.shape, self.colour, self.x, self.y, self.r = shape, colour, x, y, r

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


def _scene(ctx: Ctx, n: int, unique: bool = True, radius: tuple[float, float] | None = None):
    """``n`` objects with distinct (colour, shape) names when ``unique``."""
    w, h = canvas_size(ctx, 320, 600)
    bg = light_background(ctx)
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    if ctx.coin(0.3):  # a faint grid or floor line for some scenes
        step = ctx.rng.randint(30, 60)
        for gx in range(0, w, step):
            draw.line((gx, 0, gx, h), fill=tuple(c - 12 for c in bg))
        for gy in range(0, h, step):
            draw.line((0, gy, w, gy), fill=tuple(c - 12 for c in bg))
    lo, hi = radius or (ctx.lerp(34, 12), ctx.lerp(40, 16))
    r = (lo + hi) / 2
    points = None
    while points is None:
        points = place_apart(ctx, n, w, h, r * 1.2, margin=r * 1.4 + 4, gap=1.15)
        if points is None:
            r *= 0.85
    names: set[tuple[str, str]] = set()
    objects = []
    for x, y in points:
        for _ in attempts():
            shape, colour = ctx.choice(SHAPES), ctx.choice(_SCENE_COLOURS)
            if not unique or (shape, colour) not in names:
                break
        names.add((shape, colour))
        size = ctx.rng.uniform(r * 0.8, r * 1.15)
        objects.append(_Obj(shape, colour, x, y, size))
    for obj in objects:
        outline = (40, 40, 40) if obj.colour in ("yellow", "gray", "pink") or ctx.coin(0.3) else None
        draw_shape(draw, obj.shape, obj.x, obj.y, obj.r, jitter(COLOURS[obj.colour], ctx, 10), outline, ctx.rng.uniform(-15, 15))
    ctx.diff.add((n - 2) / 10, 1.5)
    ctx.diff.add((40 - r) / 28, 1.0)
    return img, objects


def _pair_with_direction(ctx: Ctx, objects: list[_Obj]):
    """Two objects whose separation is clearly along one axis."""
    pairs = []
    for a in objects:
        for b in objects:
            if a is b:
                continue
            dx, dy = a.x - b.x, a.y - b.y
            if abs(dx) > 1.8 * abs(dy) and abs(dx) > a.r + b.r:
                pairs.append((a, b, "left" if dx < 0 else "right"))
            elif abs(dy) > 1.8 * abs(dx) and abs(dy) > a.r + b.r:
                pairs.append((a, b, "above" if dy < 0 else "below"))
    return ctx.choice(pairs) if pairs else None


def relative_position(ctx: Ctx) -> Item:
    for _ in attempts():
        img, objects = _scene(ctx, ctx.ilerp(2, 8))
        picked = _pair_with_direction(ctx, objects)
        if picked:
            break
    a, b, direction = picked
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Where is the {a.name} relative to the {b.name}?",
            f"Is the {a.name} left of, right of, above or below the {b.name}?",
            f"Describe the position of the {a.name} with respect to the {b.name}.",
        )
    )
    return ctx.item(img, question, direction, "multiple_choice", choices=["left", "right", "above", "below"])


def left_right_check(ctx: Ctx) -> Item:
    for _ in attempts():
        img, objects = _scene(ctx, ctx.ilerp(2, 8))
        picked = _pair_with_direction(ctx, objects)
        if picked:
            break
    a, b, direction = picked
    asked = direction if ctx.coin() else {"left": "right", "right": "left", "above": "below", "below": "above"}[direction]
    phrase = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}[asked]
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice((f"Is the {a.name} {phrase} the {b.name}?", f"Looking at the image, is the {a.name} {phrase} the {b.name}?"))
    return ctx.item(img, question, "yes" if asked == direction else "no", "yes_no")


def count_objects(ctx: Ctx) -> Item:
    w, h = canvas_size(ctx, 320, 600)
    img = Image.new("RGB", (w, h), light_background(ctx))
    draw = ImageDraw.Draw(img)
    target = ctx.choice(SHAPES)
    k = ctx.rng.randint(1, int(ctx.lerp(5, 12)))
    distractors = ctx.rng.randint(0, int(ctx.lerp(2, 10)))
    r = ctx.lerp(30, 11)
    points = None
    while points is None:
        points = place_apart(ctx, k + distractors, w, h, r * 1.25, margin=r * 1.4 + 4)
        if points is None:
            r *= 0.85
    by_colour = ctx.coin(0.35)
    colour = ctx.choice(_SCENE_COLOURS[:8])
    count = 0
    for i, (x, y) in enumerate(points):
        if by_colour:
            c = colour if i < k else ctx.choice([c for c in _SCENE_COLOURS if c != colour])
            s = ctx.choice(SHAPES)
        else:
            s = target if i < k else ctx.choice([x for x in SHAPES if x != target])
            c = ctx.choice(_SCENE_COLOURS)
        count += i < k
        draw_shape(draw, s, x, y, r * ctx.rng.uniform(0.85, 1.1), jitter(COLOURS[c], ctx, 10), (40, 40, 40) if c in ("yellow", "gray") else None, ctx.rng.uniform(0, 40))
    ctx.diff.add((k + distractors - 1) / 20, 2.0)
    ctx.diff.add((30 - r) / 19, 1.0)
    img = finish(img, ctx, noise=0.03)
    if by_colour:
        question = ctx.choice((f"How many {colour} objects are there?", f"Count the {colour} shapes in the image."))
    else:
        plural = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "diamond": "diamonds", "hexagon": "hexagons"}[target]
        question = ctx.choice((f"How many {plural} are in the image?", f"Count the {plural}.", f"How many {plural} can you see?"))
    return ctx.item(img, question, str(count), "number", tolerance=0.0)


def nearest(ctx: Ctx) -> Item:
    for _ in attempts():
        img, objects = _scene(ctx, ctx.ilerp(4, 9))
        anchor = ctx.choice(objects)
        others = sorted((o for o in objects if o is not anchor), key=lambda o: math.hypot(o.x - anchor.x, o.y - anchor.y))
        d0 = math.hypot(others[0].x - anchor.x, others[0].y - anchor.y)
        d1 = math.hypot(others[1].x - anchor.x, others[1].y - anchor.y)
        if d1 > d0 * 1.25:
            break
    choices = [o.name for o in others[: min(4, len(others))]]
    answer = choices[0]
    ctx.rng.shuffle(choices)
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Which object is closest to the {anchor.name}?",
            f"What is the nearest shape to the {anchor.name}?",
        )
    )
    ctx.diff.add(min(1.0, 1.6 - d1 / d0), 0.5)
    return ctx.item(img, question, answer, "multiple_choice", choices=choices)


def extreme(ctx: Ctx) -> Item:
    direction = ctx.choice(("leftmost", "rightmost", "topmost", "bottommost"))
    key = {
        "leftmost": lambda o: o.x,
        "rightmost": lambda o: -o.x,
        "topmost": lambda o: o.y,
        "bottommost": lambda o: -o.y,
    }[direction]
    for _ in attempts():
        img, objects = _scene(ctx, ctx.ilerp(3, 9))
        ordered = sorted(objects, key=key)
        if abs(key(ordered[1]) - key(ordered[0])) > ordered[0].r:
            break
    img = finish(img, ctx, noise=0.03)
    words = {
        "leftmost": "furthest to the left",
        "rightmost": "furthest to the right",
        "topmost": "closest to the top",
        "bottommost": "closest to the bottom",
    }
    question = ctx.choice(
        (
            f"Which object is {words[direction]}? Name its colour and shape.",
            f"Name the {direction} object (colour and shape).",
        )
    )
    return ctx.item(img, question, ordered[0].name, "anls")


def quadrant(ctx: Ctx) -> Item:
    for _ in attempts():
        img, objects = _scene(ctx, ctx.ilerp(2, 8))
        w, h = img.size
        clear = [o for o in objects if abs(o.x - w / 2) > o.r + 10 and abs(o.y - h / 2) > o.r + 10]
        if clear:
            break
    obj = ctx.choice(clear)
    answer = f"{'top' if obj.y < h / 2 else 'bottom'}-{'left' if obj.x < w / 2 else 'right'}"
    img = finish(img, ctx, noise=0.03)
    question = ctx.choice(
        (
            f"In which quadrant of the image is the {obj.name}?",
            f"Which corner region contains the {obj.name}?",
        )
    )
    return ctx.item(img, question, answer, "multiple_choice", choices=["top-left", "top-right", "bottom-left", "bottom-right"])


SUBTYPES = {
    "relative_position": relative_position,
    "left_right_check": left_right_check,
    "count": count_objects,
    "nearest": nearest,
    "extreme": extreme,
    "quadrant": quadrant,
}
