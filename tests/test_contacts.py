"""Phones, messenger handles and links found in post text, normalised so they can link accounts."""

from __future__ import annotations

import pytest

from watcher.detect.contacts import Contact, extract_contacts, normalise_phone


def _values(text: str, kind: str, **kwargs) -> list[str]:
    return [c.value for c in extract_contacts(text, **kwargs) if c.kind == kind]


PHONES = [
    # (text, E.164) -- local formats as dealers write them, region from script or prefix
    ("Call 012 345 678 now", "+85512345678"),  # KH mobile, national
    ("ទូរស័ព្ទ 097 123 4567", "+855971234567"),  # KH, Khmer text, 10 digits
    ("lh 012-345-678 giá tốt", "+85512345678"),  # KH-only prefix even in Vietnamese text
    ("Liên hệ 0912 345 678", "+84912345678"),  # VN mobile
    ("Zalo hoặc gọi 090.123.4567", "+84901234567"),  # VN, dots
    ("电话 138 0013 8000", "+8613800138000"),  # CN mobile, no trunk prefix
    ("电话：138-0013-8000", "+8613800138000"),  # CN, dashes, full-width colon
    ("北京 010 1234 5678", "+861012345678"),  # CN landline, Beijing
    ("โทร 081 234 5678", "+66812345678"),  # TH mobile (also valid in VN: Thai text decides)
    ("โทร ๐๘๑-๒๓๔-๕๖๗๘", "+66812345678"),  # TH, Thai digits
    ("ติดต่อ 02 123 4567", "+6621234567"),  # TH Bangkok landline
    ("+855 12 345 678", "+85512345678"),  # international
    ("00855 12 345 678", "+85512345678"),  # international, 00 prefix
    ("(+84) 912 345 678", "+84912345678"),  # international, parenthesised code
    ("+66 81 234 5678", "+66812345678"),
    ("855 12 345 678", "+85512345678"),  # country code without +
    ("0 1 2 . 3 4 5 . 6 7 8", "+85512345678"),  # obfuscated: spaced digits
    ("０１２３４５６７８", "+85512345678"),  # obfuscated: full-width digits
    ("0-9-1-2-3-4-5-6-7-8 inbox", "+84912345678"),  # obfuscated: dashes
]


@pytest.mark.parametrize(("text", "e164"), PHONES, ids=[p[0] for p in PHONES])
def test_local_phone_formats_are_normalised_to_e164(text: str, e164: str):
    assert _values(text, "phone") == [e164]


def test_phone_raw_and_offsets_point_into_the_original_text():
    text = "สนใจ โทร ๐๘๑-๒๓๔-๕๖๗๘ ครับ"
    (phone,) = extract_contacts(text)
    assert text[phone.start : phone.end] == phone.raw == "๐๘๑-๒๓๔-๕๖๗๘"


def test_two_numbers_in_one_run_are_split():
    assert _values("012 345 678 097 123 4567", "phone") == ["+85512345678", "+855971234567"]
    assert _values("012-345-678 / 097 123 4567", "phone") == ["+85512345678", "+855971234567"]


def test_ambiguous_number_follows_region_hints():
    # 0812345678 is valid in Vietnam and Thailand: the caller's regions decide.
    assert _values("call 081 234 5678", "phone", regions=["TH"]) == ["+66812345678"]
    assert _values("call 081 234 5678", "phone", regions=["VN", "TH"]) == ["+84812345678"]


@pytest.mark.parametrize(
    "text",
    [
        "price 1.200.000 đ, 2 pcs",
        "posted 2024-03-01 10:30",
        "order no. 12345678 shipped",
        "weight 0.5 kg, 30 cm",
        "ref ABC0123456789",
        "call 012 34",  # too short
        "Model 0912-345-67B",  # a model code (an OCR'd "O912-345-67B" too), not +855 91 234 567
    ],
)
def test_prices_dates_and_ids_are_not_phones(text: str):
    assert _values(text, "phone") == []


def test_normalise_phone_rejects_invalid_numbers():
    assert normalise_phone("+855 12 345 678") == "+85512345678"
    assert normalise_phone("0000000000") is None
    assert normalise_phone("+1 000") is None
    assert normalise_phone("12345678901") is None  # 11 digits starting 1 but not a CN mobile


HANDLES = [
    ("Telegram: @Ivory_Dealer99", "telegram", "ivory_dealer99"),
    ("tg @horn_shop", "telegram", "horn_shop"),
    ("tele: @KH_tusk", "telegram", "kh_tusk"),
    ("join t.me/IvoryKH today", "telegram", "ivorykh"),
    ("https://t.me/s/ivory_kh/123", "telegram", "ivory_kh"),
    ("wechat: ivory_888", "wechat", "ivory_888"),
    ("微信：tusk_china", "wechat", "tusk_china"),
    ("WeChat ID: Horn-Trader", "wechat", "horn-trader"),
    ("Line ID: horn.th", "line", "horn.th"),
    ("line: @ivoryshop", "line", "@ivoryshop"),
    ("ไลน์: scale_th", "line", "scale_th"),
    ("https://line.me/ti/p/~pangolin88", "line", "pangolin88"),
    ("WhatsApp +855 97 123 4567", "whatsapp", "+855971234567"),
    ("wa.me/855971234567", "whatsapp", "+855971234567"),
    ("zalo 0912 345 678", "zalo", "+84912345678"),
    ("zalo.me/0912345678", "zalo", "+84912345678"),
]


@pytest.mark.parametrize(("text", "kind", "value"), HANDLES, ids=[h[0] for h in HANDLES])
def test_messenger_handles(text: str, kind: str, value: str):
    assert value in _values(text, kind)


def test_handle_in_url_is_not_also_an_outbound_link():
    contacts = extract_contacts("t.me/ivory_kh and wa.me/855971234567")
    assert {c.kind for c in contacts} == {"telegram", "whatsapp"}


def test_an_at_name_without_messenger_word_is_not_telegram():
    assert _values("thanks @customer for buying", "telegram") == []


def test_outbound_links_are_normalised():
    text = "see HTTPS://Shop.Example.COM/item?id=3#photos, or www.Foo.org/bar. (http://x.io:80/a)"
    assert _values(text, "link") == [
        "https://shop.example.com/item?id=3",
        "https://www.foo.org/bar",
        "http://x.io/a",
    ]
    first = extract_contacts(text)[0]
    assert first == Contact(
        "link",
        "https://shop.example.com/item?id=3",
        "HTTPS://Shop.Example.COM/item?id=3#photos",
        4,
        45,
    )


def test_mixed_post_yields_every_contact_in_text_order():
    text = "Ngà voi thật 💯 Zalo 0912345678, tg @ivory_vn, https://shop.vn/p/1"
    kinds = [(c.kind, c.value) for c in extract_contacts(text)]
    assert kinds == [
        ("phone", "+84912345678"),
        ("zalo", "+84912345678"),
        ("telegram", "ivory_vn"),
        ("link", "https://shop.vn/p/1"),
    ]


def test_empty_text():
    assert extract_contacts("") == []
