"""Documents: tables, forms with fields and checkboxes, receipts, invoice headers
(key-value lookup), titles and stamps. Small print, many rows, skew and noise make
them harder."""

from __future__ import annotations

from PIL import Image, ImageDraw

from lrcal.calsets.gen import vocab
from lrcal.calsets.gen.render import Ctx, Item, article, finish, fit_size, font, paste_text, text_width


def _page(ctx: Ctx, w_range=(340, 560), h_range=(380, 640)):
    w = ctx.rng.randint(*w_range)
    h = ctx.rng.randint(*h_range)
    paper = ctx.choice(((252, 252, 250), (250, 247, 238), (245, 245, 245), (255, 255, 255)))
    img = Image.new("RGB", (w, h), paper)
    size = int(round(ctx.lerp(16, 10)))
    ctx.diff.add((16 - size) / 6, 2.0)
    return img, ImageDraw.Draw(img), size, paper


def _skew(img: Image.Image, ctx: Ctx, paper) -> Image.Image:
    """A slightly rotated scan (documents are rarely perfectly straight)."""
    angle = 0.0
    if ctx.coin(0.2 + 0.6 * ctx.level):
        angle = ctx.rng.uniform(-1, 1) * ctx.lerp(0.5, 6)
        img = img.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=paper)
    ctx.diff.add(abs(angle) / 6, 1.0)
    return img


def _crop_to_content(img: Image.Image, ctx: Ctx, bottom: float) -> Image.Image:
    """Trim the empty lower part of a page (keeps at least 256 px)."""
    height = int(min(img.height, max(256, bottom + ctx.rng.randint(16, 60))))
    return img.crop((0, 0, img.width, height)) if height < img.height else img


def _person(ctx: Ctx) -> str:
    return f"{ctx.choice(vocab.FIRST_NAMES)} {ctx.choice(vocab.LAST_NAMES)}"


def _date(ctx: Ctx) -> str:
    return f"{ctx.rng.randint(2019, 2025)}-{ctx.rng.randint(1, 12):02d}-{ctx.rng.randint(1, 28):02d}"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _table(ctx: Ctx):
    kind = ctx.choice(("people", "stock", "cities"))
    rows = ctx.ilerp(3, 9)
    if kind == "people":
        header = ["Name", "City", "Age", "Score"]
        names = ctx.sample(vocab.FIRST_NAMES, rows)
        body = [[n, ctx.choice(vocab.CITIES), str(ctx.rng.randint(19, 70)), str(ctx.rng.randint(40, 100))] for n in names]
    elif kind == "stock":
        header = ["Item", "Qty", "Price", "Aisle"]
        items = ctx.sample(vocab.PRODUCTS, rows)
        body = [[i, str(ctx.rng.randint(1, 60)), _money(ctx.rng.randint(99, 4999)), str(ctx.rng.randint(1, 24))] for i in items]
    else:
        header = ["City", "Population", "Area", "Founded"]
        cities = ctx.sample(vocab.CITIES, rows)
        body = [
            [c, f"{ctx.rng.randint(20, 2500) * 1000:,}", str(ctx.rng.randint(40, 900)), str(ctx.rng.randint(800, 1900))]
            for c in cities
        ]
    size = int(round(ctx.lerp(16, 10)))
    ctx.diff.add((16 - size) / 6, 2.0)
    title = ctx.choice(("Members", "Inventory", "City facts", "Register", "Overview")) if ctx.coin() else ""
    row_h = size + 10
    top = 20 + (size + 16 if title else 0)
    w = ctx.rng.randint(380, 620)
    h = min(640, max(256, top + row_h * (len(body) + 1) + ctx.rng.randint(20, 120)))
    paper = ctx.choice(((252, 252, 250), (250, 247, 238), (245, 245, 245), (255, 255, 255)))
    img = Image.new("RGB", (w, h), paper)
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((20, 20), title, fill=(20, 20, 20), font=font(size + 5))
    col_w = [max(text_width(r[c], size + 1) for r in [header] + body) + 18 for c in range(len(header))]
    scale = min(1.0, (w - 40) / sum(col_w))
    col_w = [int(c * scale) for c in col_w]
    zebra = ctx.coin(0.5)
    lines = ctx.coin(0.6)
    x0, y = 20, top
    for r, row in enumerate([header] + body):
        if r == 0:
            draw.rectangle((x0, y, x0 + sum(col_w), y + row_h), fill=(215, 225, 240))
        elif zebra and r % 2 == 0:
            draw.rectangle((x0, y, x0 + sum(col_w), y + row_h), fill=(238, 238, 238))
        x = x0
        for c, cell in enumerate(row):
            s = fit_size(cell, size + (1 if r == 0 else 0), col_w[c] - 6)
            draw.text((x + 6, y + row_h / 2), cell, fill=(20, 20, 20), font=font(s), anchor="lm")
            x += col_w[c]
        if lines:
            draw.line((x0, y + row_h, x0 + sum(col_w), y + row_h), fill=(170, 170, 170))
        y += row_h
    ctx.diff.add((len(body) - 3) / 6, 1.0)
    return img, paper, header, body


def table_lookup(ctx: Ctx) -> Item:
    img, paper, header, body = _table(ctx)
    r = ctx.rng.randrange(len(body))
    c = ctx.rng.randrange(1, len(header))
    value = body[r][c]
    img = finish(_skew(img, ctx, paper), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"What is the {header[c]} value for {body[r][0]}?",
            f"In the table, what is listed under {header[c]} for {body[r][0]}?",
            f"Look up {body[r][0]}: what does the {header[c]} column say?",
        )
    )
    if header[c] == "City":
        return ctx.item(img, question, value, "anls")
    return ctx.item(img, question, value.replace(",", ""), "number", tolerance=0.0)


def table_reverse(ctx: Ctx) -> Item:
    img, paper, header, body = _table(ctx)
    candidates = [
        (r, c)
        for c in range(1, len(header))
        for r in range(len(body))
        if sum(row[c] == body[r][c] for row in body) == 1
    ]
    r, c = ctx.choice(candidates)
    img = finish(_skew(img, ctx, paper), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Which {header[0].lower()} is listed with {header[c]} = {body[r][c]}?",
            f"Whose {header[c]} is {body[r][c]}?" if header[0] == "Name" else f"Which row has {body[r][c]} in the {header[c]} column?",
        )
    )
    ctx.diff.add(0.5, 0.5)
    return ctx.item(img, question, body[r][0], "anls")


_FORM_FIELDS = ("Full name", "Date", "Email", "Phone", "Account no.", "City", "Reference")


def _field_value(ctx: Ctx, label: str, person: str) -> tuple[str, str]:
    """(value, answer_type) for a form field."""
    if label == "Full name":
        return person, "anls"
    if label == "Date":
        return _date(ctx), "exact"
    if label == "Email":
        first, last = person.lower().split(" ", 1)
        return f"{first}.{last}@{ctx.choice(('mail.com', 'post.org', 'example.net'))}", "exact"
    if label == "Phone":
        return f"+{ctx.rng.randint(1, 49)} {ctx.rng.randint(100, 999)} {ctx.rng.randint(1000, 9999)}", "exact"
    if label == "Account no.":
        return f"{ctx.rng.randint(10_000_000, 99_999_999)}", "exact"
    if label == "City":
        return ctx.choice(vocab.CITIES), "anls"
    return "".join(ctx.choice(vocab.CODE_ALPHABET) for _ in range(6)), "exact"


def _form(ctx: Ctx):
    img, draw, size, paper = _page(ctx)
    w, h = img.size
    title = ctx.choice(("Membership Form", "Registration", "Application Form", "Customer Details", "Service Request"))
    draw.text((w / 2, 22), title, fill=(20, 20, 20), font=font(size + 6), anchor="mt")
    person = _person(ctx)
    n = ctx.ilerp(3, len(_FORM_FIELDS))
    labels = ctx.sample(_FORM_FIELDS, n)
    values = []
    y = 60 + size
    label_w = max(text_width(label + ":", size) for label in labels) + 12
    handwritten = ctx.coin(0.4)
    for label in labels:
        value, answer_type = _field_value(ctx, label, person)
        values.append((label, value, answer_type))
        draw.text((24, y), label + ":", fill=(40, 40, 40), font=font(size), anchor="lm")
        draw.line((24 + label_w, y + size * 0.7, w - 24, y + size * 0.7), fill=(150, 150, 150))
        vs = fit_size(value, size + 1, w - 40 - label_w)
        if handwritten:
            paste_text(img, value, vs, (20, 40, 140), (24 + label_w + 4 + text_width(value, vs) / 2, y), angle=ctx.rng.uniform(-3, 3), shear=0.2)
        else:
            draw.text((24 + label_w + 4, y), value, fill=(10, 10, 10), font=font(vs), anchor="lm")
        y += size * 2 + 8
    ctx.diff.add((n - 3) / 4, 1.0)
    ctx.diff.add(1.0 if handwritten else 0.0, 0.5)
    return img, draw, paper, values, y


def form_field(ctx: Ctx) -> Item:
    img, _, paper, values, bottom = _form(ctx)
    label, value, answer_type = ctx.choice(values)
    img = finish(_skew(_crop_to_content(img, ctx, bottom), ctx, paper), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"What is written in the '{label}' field?",
            f"What is the {label.rstrip('.').lower()} entered on this form?",
            f"Read the value of the field labelled {label}.",
        )
    )
    return ctx.item(img, question, value, answer_type)


def checkbox(ctx: Ctx) -> Item:
    img, draw, size, paper = _page(ctx)
    w, h = img.size
    draw.text((24, 22), ctx.choice(("Order options", "Preferences", "Delivery request", "Survey")), fill=(20, 20, 20), font=font(size + 5))
    options = ctx.sample(
        [
            "Express delivery", "Gift wrap", "Leave at door", "Signature required", "Newsletter",
            "Paper invoice", "Weekend delivery", "Insurance", "Eco packaging", "Call before arrival",
        ],
        ctx.ilerp(3, 7),
    )  # fmt: skip
    checked = [ctx.coin() for _ in options]
    y = 60 + size
    box = size + 2
    for option, on in zip(options, checked):
        draw.rectangle((24, y - box / 2, 24 + box, y + box / 2), outline=(30, 30, 30), width=2)
        if on:
            mark = ctx.choice(("x", "tick", "fill"))
            if mark == "x":
                draw.line((27, y - box / 2 + 3, 21 + box, y + box / 2 - 3), fill=(20, 20, 120), width=2)
                draw.line((27, y + box / 2 - 3, 21 + box, y - box / 2 + 3), fill=(20, 20, 120), width=2)
            elif mark == "tick":
                draw.line([(27, y), (24 + box * 0.45, y + box / 2 - 3), (21 + box, y - box / 2 + 2)], fill=(20, 20, 120), width=2)
            else:
                draw.rectangle((28, y - box / 2 + 4, 20 + box, y + box / 2 - 4), fill=(30, 30, 30))
        draw.text((34 + box, y), option, fill=(20, 20, 20), font=font(size), anchor="lm")
        y += box + 14
    k = ctx.rng.randrange(len(options))
    ctx.diff.add((len(options) - 3) / 4, 1.0)
    img = finish(_skew(_crop_to_content(img, ctx, y), ctx, paper), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"Is the '{options[k]}' box checked?",
            f"Has '{options[k]}' been ticked on this form?",
            f"Is the option {options[k]} selected?",
        )
    )
    return ctx.item(img, question, "yes" if checked[k] else "no", "yes_no")


def receipt(ctx: Ctx) -> Item:
    img, draw, size, paper = _page(ctx, (260, 380), (420, 640))
    w, h = img.size
    shop = ctx.choice(vocab.SHOP_WORDS)
    draw.text((w / 2, 18), shop.upper(), fill=(20, 20, 20), font=font(fit_size(shop.upper(), size + 4, w - 30)), anchor="mt")
    draw.text((w / 2, 24 + size + 4), _date(ctx), fill=(60, 60, 60), font=font(max(8, size - 2)), anchor="mt")
    n = ctx.ilerp(2, 8)
    items = ctx.sample(vocab.PRODUCTS, n)
    prices = [ctx.rng.randint(49, 1999) for _ in items]
    y = 40 + 2 * size + 12
    for item, cents in zip(items, prices):
        draw.text((18, y), item, fill=(20, 20, 20), font=font(size), anchor="lm")
        draw.text((w - 18, y), _money(cents), fill=(20, 20, 20), font=font(size), anchor="rm")
        y += size + 8
    draw.line((18, y - 2, w - 18, y - 2), fill=(90, 90, 90))
    subtotal = sum(prices)
    tax_rate = ctx.choice((0, 5, 8, 10, 20))
    tax = round(subtotal * tax_rate / 100)
    total = subtotal + tax
    y += 6
    for label, cents in (("Subtotal", subtotal), (f"Tax {tax_rate}%", tax), ("TOTAL", total)):
        bold = label == "TOTAL"
        draw.text((18, y), label, fill=(10, 10, 10), font=font(size + (2 if bold else 0)), anchor="lm")
        draw.text((w - 18, y), _money(cents), fill=(10, 10, 10), font=font(size + (2 if bold else 0)), anchor="rm")
        y += size + 8
    ctx.diff.add((n - 2) / 6, 1.0)
    img = finish(_skew(_crop_to_content(img, ctx, y), ctx, paper), ctx, noise=0.03)
    ask = ctx.rng.randrange(3)
    if ask == 0:
        question = ctx.choice(("What is the total amount on the receipt?", "How much was paid in total?", "What is the receipt's total?"))
        return ctx.item(img, question, _money(total), "number", tolerance=0.0)
    if ask == 1:
        k = ctx.rng.randrange(n)
        question = ctx.choice((f"How much did the {items[k].lower()} cost?", f"What is the price of {items[k]} on this receipt?"))
        return ctx.item(img, question, _money(prices[k]), "number", tolerance=0.0)
    question = ctx.choice(("How many different items are listed on the receipt?", "How many products were bought?"))
    return ctx.item(img, question, str(n), "number", tolerance=0.0)


def key_value(ctx: Ctx) -> Item:
    img, draw, size, paper = _page(ctx, (380, 600), (300, 520))
    w, h = img.size
    company = ctx.choice(vocab.COMPANIES)
    kind = ctx.choice(("Invoice", "Purchase Order", "Delivery Note"))
    draw.text((24, 20), company, fill=(30, 30, 90), font=font(size + 6))
    draw.text((w - 24, 20), kind.upper(), fill=(20, 20, 20), font=font(size + 3), anchor="ra")
    prefix = {"Invoice": "INV", "Purchase Order": "PO", "Delivery Note": "DN"}[kind]
    pairs = [
        (f"{kind} No.", f"{prefix}-{ctx.rng.randint(10000, 99999)}", "exact"),
        ("Issue date", _date(ctx), "exact"),
        ("Customer", _person(ctx), "anls"),
        ("Customer ID", f"C{ctx.rng.randint(1000, 9999)}", "exact"),
        ("Due date", _date(ctx), "exact"),
        ("Amount due", _money(ctx.rng.randint(1000, 999999)), "number"),
        ("Ship to", f"{ctx.rng.randint(1, 250)} {ctx.choice(vocab.STREET_WORDS)} {ctx.choice(vocab.STREET_KINDS)}", "anls"),
    ]
    shown = ctx.sample(pairs, ctx.ilerp(3, len(pairs)))
    layout = ctx.choice(("colon", "two-column"))
    y = 64 + size
    key_w = max(text_width(k, size) for k, _, _ in shown) + 24
    for key, value, _ in shown:
        if layout == "colon":
            draw.text((24, y), f"{key}: {value}", fill=(20, 20, 20), font=font(fit_size(f"{key}: {value}", size, w - 48)), anchor="lm")
        else:
            draw.text((24, y), key, fill=(90, 90, 90), font=font(size), anchor="lm")
            draw.text((24 + key_w, y), value, fill=(15, 15, 15), font=font(fit_size(value, size, w - 48 - key_w)), anchor="lm")
        y += size + 12
    ctx.diff.add((len(shown) - 3) / 4, 1.0)
    key, value, answer_type = ctx.choice(shown)
    img = finish(_skew(_crop_to_content(img, ctx, y), ctx, paper), ctx, noise=0.03)
    question = ctx.choice(
        (
            f"What is the '{key}' entry on this {kind.lower()}?",
            f"What value is given for '{key}'?",
            f"According to the document, what is written next to {key}?",
        )
    )
    if answer_type == "number":
        return ctx.item(img, question, value, "number", tolerance=0.0)
    return ctx.item(img, question, value, answer_type)


def title_and_stamp(ctx: Ctx) -> Item:
    img, draw, size, paper = _page(ctx)
    w, h = img.size
    title = ctx.choice(vocab.DOC_TITLES)
    draw.text((w / 2, 24), title, fill=(20, 20, 20), font=font(fit_size(title, size + 8, w - 40)), anchor="mt")
    y = 70
    while y < h - 40:  # body text as grey lines of words
        words = " ".join(ctx.sample(vocab.WORDS, ctx.rng.randint(3, 7)))
        draw.text((24, y), words, fill=(110, 110, 110), font=font(fit_size(words, max(8, size - 2), w - 48)))
        y += size + 8
    stamp = ctx.choice(("PAID", "OVERDUE", "COPY", "APPROVED", None, None))
    if stamp:
        stamp_size = ctx.rng.randint(22, 36)
        colour = (200, 30, 30) if stamp in ("PAID", "OVERDUE") else (30, 90, 180)
        paste_text(img, stamp, stamp_size, colour, (w * ctx.rng.uniform(0.4, 0.7), h * ctx.rng.uniform(0.4, 0.75)), angle=ctx.rng.uniform(-30, 30), stroke=1)
    img = finish(_skew(img, ctx, paper), ctx, noise=0.03)
    if ctx.coin(0.5):
        question = ctx.choice(("What is the title of this document?", "What kind of document is this, according to its heading?"))
        return ctx.item(img, question, title, "anls")
    probe = stamp if stamp and ctx.coin(0.6) else ctx.choice(("PAID", "OVERDUE", "APPROVED"))
    question = ctx.choice((f"Is the document stamped '{probe}'?", f"Does this page carry {article(probe)} {probe} stamp?"))
    ctx.diff.add(0.3, 0.5)
    return ctx.item(img, question, "yes" if probe == stamp else "no", "yes_no")


SUBTYPES = {
    "table_lookup": table_lookup,
    "table_reverse": table_reverse,
    "form_field": form_field,
    "checkbox": checkbox,
    "receipt": receipt,
    "key_value": key_value,
    "title_stamp": title_and_stamp,
}
