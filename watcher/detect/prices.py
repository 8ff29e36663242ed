"""Prices in text: an amount and its currency, as dealers write them.

Dealers in the region price in US dollars, riel, dong, yuan and baht, and write amounts the
local way: ``1tr5`` (1.5 million dong), ``150k``, ``1.500.000đ``, ``2 triệu``, ``5万``,
``$1,200``, ``40 000៛``. A bare number is never a price here (it is far more often a phone
number, a date or an order number): an amount counts only with a currency sign or word, or
a unit word that only prices use (``tr``, ``triệu``, ``k``, ``万``).

Pure: no database. Amounts are :class:`~decimal.Decimal` so that ``1.5 triệu`` is exactly
1,500,000 and a test can compare them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Currency codes (ISO 4217) by the way they are written, before or after the amount.
_PREFIX = {
    "us$": "USD",
    "usd": "USD",
    "$": "USD",
    "៛": "KHR",
    "khr": "KHR",
    "₫": "VND",
    "vnd": "VND",
    "vnđ": "VND",
    "¥": "CNY",
    "rmb": "CNY",
    "cny": "CNY",
    "฿": "THB",
    "thb": "THB",
}
_SUFFIX = {
    **_PREFIX,
    "đ": "VND",
    "d": "VND",  # Vietnamese typed without diacritics: 1.500.000d
    "đồng": "VND",
    "dong": "VND",
    "元": "CNY",
    "块": "CNY",
    "塊": "CNY",
    "บาท": "THB",
    "riel": "KHR",
    "riels": "KHR",
    "រៀល": "KHR",
    "dollar": "USD",
    "dollars": "USD",
    "ដុល្លារ": "KHR_USD",  # "dollar" in Khmer: US dollars (see _CURRENCY_ALIASES)
}
_CURRENCY_ALIASES = {"KHR_USD": "USD"}

# Units that multiply the amount, and the currency they imply (None: the caller's local one).
_UNITS: dict[str, tuple[int, str | None]] = {
    "k": (1_000, None),
    "nghìn": (1_000, "VND"),
    "nghin": (1_000, "VND"),
    "ngàn": (1_000, "VND"),
    "ngan": (1_000, "VND"),
    "tr": (1_000_000, "VND"),
    "triệu": (1_000_000, "VND"),
    "trieu": (1_000_000, "VND"),
    "củ": (1_000_000, "VND"),  # slang for a million dong
    "tỷ": (1_000_000_000, "VND"),
    "ty": (1_000_000_000, "VND"),
    "千": (1_000, "CNY"),
    "万": (10_000, "CNY"),
    "萬": (10_000, "CNY"),
    "亿": (100_000_000, "CNY"),
}
# Units after which a few digits continue the amount: 1tr5 = 1.5 million, 1k2 = 1,200.
_TAIL_UNITS = frozenset({"k", "tr", "củ", "万", "萬"})

# Only a price: no currency is that small and no listing that large.
MAX_AMOUNT = Decimal(10) ** 13


def _alternation(words: object) -> str:
    # Longest first, so "us$" wins over "$" and "triệu" over "tr".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))  # type: ignore[arg-type]


# An amount starts after a space, punctuation, or a letter of a script written without
# spaces (Chinese, Thai, Khmer: "每个5万"), never inside a Latin word or a longer number.
# An amount: digits grouped by thousands (1.500.000, 1,200, 40 000) with maybe decimals,
# or plain digits with maybe one decimal part.
_NUMBER = r"\d{1,3}(?:[.,  ]\d{3})+(?:[.,]\d{1,2})?(?!\d)|\d+(?:[.,]\d+)?"
_PRICE = re.compile(
    rf"(?<![A-Za-z\u00c0-\u024f\u1e00-\u1eff\d.,])(?:(?P<pre>{_alternation(_PREFIX)})\s?)?"
    rf"(?P<num>{_NUMBER})"
    rf"(?:\s?(?P<unit>{_alternation(_UNITS)})(?P<tail>\d{{1,3}})?)?"
    rf"(?:\s?(?P<post>{_alternation(_SUFFIX)}))?",
    re.IGNORECASE,
)
_ASCII_WORD = re.compile(r"[a-z]+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Price:
    """One price found in a text: ``text[start:end] == raw``."""

    amount: Decimal
    currency: str  # ISO 4217: USD, KHR, VND, CNY, THB
    raw: str
    start: int
    end: int

    def __str__(self) -> str:
        amount = f"{self.amount:,.2f}".removesuffix(".00")
        return f"{amount} {self.currency}"


def extract_prices(text: str, local_currency: str | None = None) -> list[Price]:
    """Every price in ``text``, in text order.

    ``local_currency`` is what a bare ``150k`` means; by default the text's script decides
    (Khmer: riel, Thai: baht, Chinese: yuan, else dong, where ``k`` is most written).
    """
    local = local_currency or _local_currency(text)
    found = []
    for match in _PRICE.finditer(text):
        price = _price(text, match, local)
        if price is not None:
            found.append(price)
    return found


def _price(text: str, match: re.Match[str], local: str) -> Price | None:
    pre, unit, tail, post = (match.group(g) for g in ("pre", "unit", "tail", "post"))
    end = match.end()
    # A currency or unit word must end where the word ends: "150 kg" is a weight, "3 days"
    # is not "3 d", "5 usdt" is not dollars.
    if post and not _word_ends(text, match.end("post")):
        post, end = (
            None,
            match.end("tail") if tail else match.end("unit") if unit else match.end("num"),
        )
    if unit and not post and not _word_ends(text, match.end("tail") if tail else match.end("unit")):
        return None
    if (
        pre
        and _ASCII_WORD.match(pre)
        and match.start("pre") > 0
        and text[match.start() - 1].isalpha()
    ):
        return None
    if not (pre or unit or post):
        return None  # a bare number is not a price
    if post and post.lower() == "d" and not unit and not _grouped(match.group("num")):
        return None  # "3d", "30d": days or 3D, not dong; "1.500.000d" is dong
    currency = _currency(pre) or _currency(post)
    multiplier = 1
    if unit:
        multiplier, implied = _UNITS[_unit_key(unit)]
        currency = currency or implied or local
    if currency is None:
        return None
    amount = _amount(match.group("num"), currency)
    if amount is None:
        return None
    if tail and _unit_key(unit or "") in _TAIL_UNITS:
        amount += Decimal(tail) / Decimal(10) ** len(tail)
    elif tail:
        return None
    amount *= multiplier
    if not 0 < amount < MAX_AMOUNT:
        return None
    start = match.start()
    amount = amount.normalize() if amount % 1 else Decimal(int(amount))
    return Price(amount, currency, text[start:end], start, end)


def _word_ends(text: str, at: int) -> bool:
    return at >= len(text) or not (
        text[at].isalpha() and text[at - 1].isascii() == text[at].isascii()
    )


def _unit_key(unit: str) -> str:
    return unicodedata.normalize("NFC", unit).lower()


def _currency(word: str | None) -> str | None:
    if not word:
        return None
    code = _SUFFIX.get(_unit_key(word))
    return _CURRENCY_ALIASES.get(code, code) if code else None


def _grouped(number: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:[.,  ]\d{3})+", number))


def _amount(number: str, currency: str) -> Decimal | None:
    """The amount written as ``number``: thousands grouped by ".", ",", spaces; a last
    "." or "," followed by one or two digits (or by three, when the other separator is also
    used) is the decimal point."""
    digits = re.sub(r"[  ]", "", number)
    seps = [c for c in digits if c in ".,"]
    last = max(digits.rfind("."), digits.rfind(","))
    after = digits[last + 1 :]
    # One separator not followed by three digits, or a mix of both ("1.200,50"): the last
    # one is the decimal point. Otherwise every separator groups thousands.
    if seps and (len(set(seps)) > 1 or (len(seps) == 1 and len(after) != 3)):
        whole, frac = digits[:last], after
    else:
        whole, frac = digits, ""
    whole = re.sub(r"[.,]", "", whole)
    try:
        value = Decimal(int(whole))
        if frac:
            value += Decimal(int(frac)) / Decimal(10) ** len(frac)
    except (InvalidOperation, ValueError):
        return None
    return value


_LOCAL_BY_SCRIPT = (
    ("KHR", re.compile(r"[\u1780-\u17ff]")),
    ("THB", re.compile(r"[\u0e00-\u0e7f]")),
    ("CNY", re.compile(r"[\u4e00-\u9fff]")),
)


def _local_currency(text: str) -> str:
    return next((code for code, script in _LOCAL_BY_SCRIPT if script.search(text)), "VND")
