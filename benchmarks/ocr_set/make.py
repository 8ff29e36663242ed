"""Make the labelled set of product-like photos for the OCR benchmark and tests.

    .venv/bin/python benchmarks/ocr_set/make.py      # writes photos/ and labels.json here

Each photo is a made-up product shot (a gradient, a few bangles and beads, noise) with what
dealers write on theirs: a phone number, a Zalo / WeChat / WhatsApp / Line ID, a price, the
goods' name, in the Noto and DejaVu fonts installed here, at several sizes, colours and
angles, some under a shop watermark; plus photos with no text, and photos with look-alike
digits (serial numbers, sizes, dates, numbers one digit short) that are not contacts.
Seeded: the same photos and labels every run (only the grain of the noise differs:
Pillow draws it with its own generator). ``labels.json`` gives, for each photo, the contacts a
reader should find (as ``bench_ocr.contact_keys`` writes them) and the words drawn.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from watcher.detect.contacts import normalise_phone

HERE = Path(__file__).resolve().parent
PHOTOS = HERE / "photos"
SEED = 22

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
]
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"

GOODS = ["Vòng tay ngà voi", "象牙手镯", "Ivory bangle", "Sừng tê giác", "Rhino horn", "穿山甲片"]
PRICES = ["Giá 1tr5", "$120", "2.500.000đ", "150k", "5万", "500 บาท", "Giá 2 triệu", "¥800"]
LOOKALIKES = [
    "SN 2024-1187-55",
    "Size 18 cm  No. 88",
    "Lot 447 x 12",
    "12/05/2025",
    "Model O912-345-67B",
    "ID 091 234 56",  # one digit short of a Vietnamese mobile
    "Ref 8.812.345",
    "Weight 1.25 kg",
]


def phone(rng: random.Random, region: str) -> tuple[str, str]:
    """A valid number of ``region`` as a dealer writes it, and its E.164 form."""
    while True:
        if region == "VN":
            digits = rng.choice(["091", "098", "097", "090", "093", "035", "086"]) + "".join(
                rng.choice("0123456789") for _ in range(7)
            )
            written = rng.choice(
                [
                    f"{digits[:4]} {digits[4:7]} {digits[7:]}",
                    f"{digits[:4]}.{digits[4:7]}.{digits[7:]}",
                    digits,
                ]
            )
        elif region == "KH":
            digits = rng.choice(["012", "017", "092", "077", "089", "015"]) + "".join(
                rng.choice("0123456789") for _ in range(6)
            )
            written = rng.choice(
                [f"{digits[:3]} {digits[3:6]} {digits[6:]}", f"+855 {digits[1:3]} {digits[3:]}"]
            )
        elif region == "TH":
            digits = rng.choice(["081", "089", "086", "092"]) + "".join(
                rng.choice("0123456789") for _ in range(7)
            )
            # With the country code: a Thai 08x/09x number written nationally is also a
            # valid Vietnamese one, and the models cannot read the Thai script that would
            # say which (contacts.py reads it as Vietnamese without Thai letters).
            written = f"+66 {digits[1:3]}-{digits[3:6]}-{digits[6:]}"
        else:  # CN mobile
            digits = rng.choice(["138", "139", "186", "159"]) + "".join(
                rng.choice("0123456789") for _ in range(8)
            )
            written = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
        value = normalise_phone(written, (region,))
        if value:
            return written, value


def handle(rng: random.Random) -> str:
    stem = rng.choice(["ivory", "hornshop", "xiang", "ngavoi", "dealer", "tusk"])
    return f"{stem}{rng.randint(10, 9999)}"


def contact_line(rng: random.Random) -> tuple[str, str, bool]:
    """A contact as written, its key (``contact_key``), and whether it needs a CJK font."""
    choice = rng.randrange(7)
    if choice == 0:
        written, value = phone(rng, "VN")
        return f"Zalo {written}", f"phone {value}", False
    if choice == 1:
        written, value = phone(rng, "VN")
        return f"LH: {written}", f"phone {value}", False
    if choice == 2:
        written, value = phone(rng, "KH")
        return f"Tel: {written}", f"phone {value}", False
    if choice == 3:
        written, value = phone(rng, "TH")
        return f"WhatsApp {written}", f"phone {value}", False
    if choice == 4:
        name = handle(rng)
        return f"WeChat: {name}", f"wechat {name}", False
    if choice == 5:
        name = handle(rng)
        return f"微信 {name}", f"wechat {name}", True
    name = handle(rng)
    return f"Line ID: {name}", f"line {name}", False


def product_background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A product shot: a two-colour gradient, bangles and beads, a little blur and noise."""
    w, h = size
    top = tuple(rng.randint(150, 250) for _ in range(3))
    bottom = tuple(rng.randint(60, 200) for _ in range(3))
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(h):
        t = y / h
        draw.line(
            [(0, y), (w, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    for _ in range(rng.randint(1, 3)):  # bangles
        cx, cy, r = rng.randint(80, w - 80), rng.randint(80, h - 80), rng.randint(40, 110)
        ivory = (rng.randint(220, 250), rng.randint(210, 235), rng.randint(170, 200))
        draw.ellipse(
            [cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], outline=ivory, width=rng.randint(10, 22)
        )
    for _ in range(rng.randint(5, 20)):  # beads
        cx, cy, r = rng.randint(0, w), rng.randint(0, h), rng.randint(4, 12)
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r], fill=tuple(rng.randint(90, 230) for _ in range(3))
        )
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    noise = Image.effect_noise(size, rng.randint(8, 24)).convert("RGB")
    return Image.blend(image, noise, 0.08)


def text_layer(
    rng: random.Random, size: tuple[int, int], lines: list[tuple[str, bool]]
) -> tuple[Image.Image, Image.Image]:
    """The lines drawn on a transparent layer, rotated by a small angle."""
    w, h = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    dark = rng.random() < 0.6
    colour = (
        tuple(rng.randint(0, 70) for _ in range(3)) if dark else (255, rng.randint(230, 255), 255)
    )
    colour = rng.choice([colour, (200, 20, 20), (20, 40, 160)]) if rng.random() < 0.3 else colour
    y = rng.randint(10, max(11, h // 3))
    for text, cjk in lines:
        font_size = rng.randint(24, 46)
        font = ImageFont.truetype(CJK_FONT if cjk else rng.choice(FONTS), font_size)
        x = rng.randint(10, max(11, w // 5))
        box = draw.textbbox((x, y), text, font=font)
        # A plate behind the text on some photos, as shops print their number on a band.
        if rng.random() < 0.4:
            plate = (255, 255, 255, 170) if dark else (0, 0, 0, 150)
            draw.rectangle([box[0] - 6, box[1] - 4, box[2] + 6, box[3] + 4], fill=plate)
        draw.text((x, y), text, font=font, fill=(*colour, 255))
        y = box[3] + rng.randint(12, 30)
    angle = rng.choice([0, 0, 0, rng.uniform(-12, 12), rng.uniform(-25, 25)])
    return layer.rotate(angle, resample=Image.BICUBIC, expand=False), layer


def watermark(rng: random.Random, image: Image.Image) -> Image.Image:
    """A shop watermark across the photo, as dealers put on photos they fear others take."""
    w, h = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.truetype(FONTS[0], rng.randint(28, 40))
    mark = rng.choice(["© IVORY SHOP", "HANG THAT 100%", "SHOP 88"])
    for y in range(0, h, 120):
        for x in range(-100, w, 260):
            draw.text((x + (y // 120 % 2) * 90, y), mark, font=font, fill=(255, 255, 255, 60))
    layer = layer.rotate(30, resample=Image.BICUBIC)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def make(count_contacts: int = 30, count_empty: int = 8, count_lookalike: int = 10) -> dict:
    rng = random.Random(SEED)
    PHOTOS.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    plan = (
        [("contact", i) for i in range(count_contacts)]
        + [("empty", i) for i in range(count_empty)]
        + [("lookalike", i) for i in range(count_lookalike)]
    )
    for kind, i in plan:
        size = rng.choice([(640, 480), (800, 600), (600, 600), (720, 540)])
        image = product_background(rng, size)
        lines: list[tuple[str, bool]] = []
        contacts: list[str] = []
        if kind == "contact":
            goods = rng.choice(GOODS)
            lines.append((goods, any("\u4e00" <= c <= "\u9fff" for c in goods)))
            for _ in range(rng.choice([1, 1, 2])):
                text, key, cjk = contact_line(rng)
                lines.append((text, cjk))
                contacts.append(key)
            if rng.random() < 0.6:
                price = rng.choice(PRICES)
                lines.append((price, any("\u4e00" <= c <= "\u9fff" for c in price)))
        elif kind == "lookalike":
            lines += [(text, False) for text in rng.sample(LOOKALIKES, 2)]
        if lines:
            rotated, _ = text_layer(rng, size, lines)
            image = Image.alpha_composite(image.convert("RGBA"), rotated).convert("RGB")
        marked = rng.random() < 0.3
        if marked:
            image = watermark(rng, image)
        name = f"{kind}-{i:02d}.jpg"  # JPEG, as photos come from the platforms
        path = PHOTOS / name
        image.save(path, "JPEG", quality=rng.choice([65, 75, 85]))
        labels[name] = {
            "kind": kind,
            "contacts": sorted(set(contacts)),
            "lines": [text for text, _ in lines],
            "watermark": marked,
        }
    (HERE / "labels.json").write_text(
        json.dumps(labels, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return labels


if __name__ == "__main__":
    made = make()
    print(f"{len(made)} photos in {PHOTOS}")
