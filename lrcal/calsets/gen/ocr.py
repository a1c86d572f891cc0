"""OCR: read rendered words, numbers, codes and signs (size, rotation, shear, contrast,
noise and blur vary with difficulty)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from lrcal.calsets.gen import vocab
from lrcal.calsets.gen.render import (
    COLOURS,
    Ctx,
    Item,
    canvas_size,
    finish,
    fit_size,
    ink_for_contrast,
    light_background,
    luminance,
    paste_text,
    rotated_extent,
    text_layer,
)


def _styled_text(ctx: Ctx, img: Image.Image, text: str, center, max_w: int, max_h: int, bg) -> None:
    """Render ``text`` with size/rotation/shear/contrast following the difficulty level."""
    size = int(round(ctx.lerp(56, 13, 0.2)))
    angle = ctx.rng.choice((-1, 1)) * ctx.lerp(0, 35, 0.25) if ctx.coin(0.3 + 0.6 * ctx.level) else 0.0
    shear = ctx.rng.choice((-1, 1)) * ctx.lerp(0, 0.35, 0.3) if ctx.coin(0.4 * ctx.level) else 0.0
    stretch = ctx.rng.uniform(0.8, 1.25)
    stroke = 1 if ctx.coin(0.25) and size >= 20 else 0
    contrast = ctx.lerp(0.95, 0.5, 0.2)
    ink = ink_for_contrast(bg, contrast, ctx)
    while size > 11:
        layer = text_layer(text, size, stretch, shear, stroke)
        rw, rh = rotated_extent(layer.width, layer.height, angle)
        if rw <= max_w and rh <= max_h:
            break
        size -= 2
    paste_text(img, text, size, ink, center, angle, stretch, shear, stroke)
    ctx.diff.add((56 - size) / 43, 2.0)
    ctx.diff.add(abs(angle) / 35, 1.0)
    ctx.diff.add(abs(shear) / 0.35, 0.5)
    ctx.diff.add((0.95 - contrast) / 0.45, 1.0)


def _canvas(ctx: Ctx, lo=256, hi=520):
    w, h = canvas_size(ctx, lo, hi, (1.0, 2.0))
    bg = light_background(ctx)
    if ctx.coin(0.2):  # dark background, light ink
        bg = tuple(255 - c for c in bg)
    return Image.new("RGB", (w, h), bg), bg


def _distractors(ctx: Ctx, img: Image.Image, bg, avoid: str, count: int) -> None:
    """Small unrelated words in faint ink (clutter for harder examples)."""
    w, h = img.size
    for word in ctx.sample([x for x in vocab.WORDS if x != avoid.lower()], count):
        size = ctx.rng.randint(10, 14)
        ink = ink_for_contrast(bg, 0.45, ctx)
        y = ctx.rng.choice((ctx.rng.uniform(10, h * 0.18), ctx.rng.uniform(h * 0.82, h - 10)))
        paste_text(img, word, size, ink, (ctx.rng.uniform(40, w - 40), y))


def read_word(ctx: Ctx) -> Item:
    img, bg = _canvas(ctx)
    word = ctx.choice(vocab.WORDS)
    word = ctx.choice((word.upper(), word.capitalize(), word))
    w, h = img.size
    _styled_text(ctx, img, word, (w / 2 + ctx.rng.uniform(-w * 0.1, w * 0.1), h / 2), int(w * 0.9), int(h * 0.6), bg)
    clutter = ctx.ilerp(0, 4)
    _distractors(ctx, img, bg, word, clutter)
    ctx.diff.add(clutter / 4, 0.5)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            "What word is written in the large text?",
            "Read the main word shown in the image.",
            "Transcribe the biggest word in this picture.",
            "Which word appears in large letters?",
        )
    )
    return ctx.item(img, question, word, "exact")


def coloured_word(ctx: Ctx) -> Item:
    w, h = canvas_size(ctx, 320, 560, (1.1, 1.8))
    bg = light_background(ctx)
    img = Image.new("RGB", (w, h), bg)
    n = ctx.ilerp(2, 5)
    names = ctx.sample(["red", "green", "blue", "orange", "purple", "brown", "black"], n)
    words = ctx.sample(vocab.WORDS, n)
    size = int(round(ctx.lerp(40, 14)))
    rows = h / (n + 1)
    for i, (name, word) in enumerate(zip(names, words)):
        s = fit_size(word, size, int(w * 0.8))
        angle = ctx.rng.uniform(-1, 1) * ctx.lerp(0, 20)
        paste_text(img, word, s, COLOURS[name], (ctx.rng.uniform(w * 0.3, w * 0.7), rows * (i + 1)), angle)
    target = ctx.rng.randrange(n)
    ctx.diff.add((40 - size) / 26, 1.5)
    ctx.diff.add((n - 2) / 3, 1.0)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            f"Which word is written in {names[target]}?",
            f"What does the {names[target]} text say?",
            f"Read the word printed in {names[target]} ink.",
        )
    )
    return ctx.item(img, question, words[target], "exact")


def read_number(ctx: Ctx) -> Item:
    img, bg = _canvas(ctx)
    digits = ctx.ilerp(3, 8)
    value = ctx.rng.randrange(10 ** (digits - 1), 10**digits)
    style = ctx.rng.randrange(3)
    if style == 0:
        shown, answer = f"{value:,}", str(value)
    elif style == 1:
        cents = ctx.rng.randrange(100)
        shown, answer = f"{value // 100:,}.{cents:02d}", f"{value // 100}.{cents:02d}"
    else:
        shown, answer = str(value), str(value)
    prefix = ctx.choice(("", "", "No. ", "Total: ", "Qty ", "# "))
    w, h = img.size
    _styled_text(ctx, img, prefix + shown, (w / 2, h / 2), int(w * 0.9), int(h * 0.6), bg)
    ctx.diff.add((digits - 3) / 5, 0.5)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            "What number is shown in the image?",
            "Read the number in the picture.",
            "Which number is written here?",
        )
    )
    return ctx.item(img, question, answer, "number", tolerance=0.0)


def read_code(ctx: Ctx) -> Item:
    img, bg = _canvas(ctx, 300, 560)
    length = ctx.ilerp(5, 9)
    chars = "".join(ctx.choice(vocab.CODE_ALPHABET) for _ in range(length))
    code = chars[:3] + "-" + chars[3:] if ctx.coin() else chars
    w, h = img.size
    label = ctx.choice(("SERIAL", "REF", "CODE", "TICKET", "PLATE", "BATCH"))
    draw = ImageDraw.Draw(img)
    draw.rectangle((w * 0.08, h * 0.25, w * 0.92, h * 0.75), outline=ink_for_contrast(bg, 0.6, ctx), width=2)
    paste_text(img, label, 13, ink_for_contrast(bg, 0.7, ctx), (w * 0.2, h * 0.25 + 12))
    _styled_text(ctx, img, code, (w / 2, h / 2 + 6), int(w * 0.8), int(h * 0.38), bg)
    ctx.diff.add((length - 5) / 4, 1.0)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            f"What is the {label.lower()} code shown in the box?",
            "Read the code printed in the box exactly.",
            "Transcribe the alphanumeric code in the image.",
        )
    )
    return ctx.item(img, question, code, "exact")


def read_sign(ctx: Ctx) -> Item:
    w, h = canvas_size(ctx, 320, 600, (1.2, 1.8))
    sky = (ctx.rng.randint(150, 200), ctx.rng.randint(190, 225), ctx.rng.randint(220, 250))
    img = Image.new("RGB", (w, h), sky)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, int(h * 0.72), w, h), fill=(ctx.rng.randint(90, 130), ctx.rng.randint(130, 160), 80))
    kind = ctx.choice(("shop", "street", "notice"))
    if kind == "shop":
        text = ctx.choice(vocab.SHOP_WORDS)
    elif kind == "street":
        text = f"{ctx.choice(vocab.STREET_WORDS)} {ctx.choice(vocab.STREET_KINDS)}"
    else:
        text = ctx.choice(vocab.NOTICES)
    board = ctx.choice(((30, 110, 60), (25, 60, 140), (200, 40, 40), (245, 245, 235), (250, 205, 40)))
    ink = (250, 250, 250) if luminance(board) < 140 else (20, 20, 20)
    bw, bh = w * ctx.rng.uniform(0.6, 0.85), h * ctx.rng.uniform(0.22, 0.32)
    cx, cy = w / 2 + ctx.rng.uniform(-w * 0.05, w * 0.05), h * 0.4
    draw.rectangle((cx - 4, cy, cx + 4, h * 0.8), fill=(90, 90, 90))
    draw.rounded_rectangle((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), radius=8, fill=board, outline=(40, 40, 40), width=3)
    size = fit_size(text, int(round(ctx.lerp(40, 14))), int(bw * 0.9))
    angle = ctx.rng.uniform(-1, 1) * ctx.lerp(0, 12)
    paste_text(img, text, size, ink, (cx, cy), angle)
    ctx.diff.add((40 - size) / 26, 2.0)
    ctx.diff.add(abs(angle) / 12, 0.5)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            "What does the sign say?",
            "What text is written on the sign?",
            "Read the sign in the picture.",
        )
    )
    return ctx.item(img, question, text, "anls")


def word_choice(ctx: Ctx) -> Item:
    img, bg = _canvas(ctx)
    options = ctx.sample(vocab.WORDS, 4)
    present = ctx.rng.randrange(4)
    w, h = img.size
    _styled_text(ctx, img, options[present], (w / 2, h / 2), int(w * 0.9), int(h * 0.6), bg)
    img = finish(img, ctx)
    question = ctx.choice(
        (
            "Which of these words is written in the image?",
            "Which word can you read in the picture?",
            "The image shows one of the following words. Which one?",
        )
    )
    return ctx.item(img, question, options[present], "multiple_choice", choices=options)


def contains_word(ctx: Ctx) -> Item:
    img, bg = _canvas(ctx, 300, 560)
    w, h = img.size
    n = ctx.ilerp(2, 6)
    words = ctx.sample(vocab.WORDS, n + 1)
    shown, probe = words[:n], words[n]
    if ctx.coin():
        probe = ctx.choice(shown)
    size = int(round(ctx.lerp(30, 13)))
    line_h = h / (n + 1)
    ink = ink_for_contrast(bg, ctx.lerp(0.95, 0.55), ctx)
    for i, word in enumerate(shown):
        s = fit_size(word, size, int(w * 0.8))
        paste_text(img, word, s, ink, (w / 2 + ctx.rng.uniform(-w * 0.15, w * 0.15), line_h * (i + 1)))
    ctx.diff.add((30 - size) / 17, 1.5)
    ctx.diff.add((n - 2) / 4, 1.0)
    img = finish(img, ctx)
    answer = "yes" if probe in shown else "no"
    question = ctx.choice(
        (
            f"Does the word '{probe}' appear in the image?",
            f"Is the word \"{probe}\" written anywhere in this picture?",
            f"Can you find the word {probe} in the list shown?",
        )
    )
    return ctx.item(img, question, answer, "yes_no")


SUBTYPES = {
    "word": read_word,
    "coloured_word": coloured_word,
    "number": read_number,
    "code": read_code,
    "sign": read_sign,
    "word_choice": word_choice,
    "contains_word": contains_word,
}
