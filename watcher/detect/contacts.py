"""Contacts in post text: phone numbers, messenger handles and outbound links.

Dealers move buyers off the platform to a phone number, a Telegram, WeChat, Line, WhatsApp
or Zalo account, or a shop link. The same contact on two watched accounts ties them
together, so every value is normalised: phones to E.164, handles to lower case, links to a
lower-case host without fragment. Pure: no database.

Phones are found by a digit-run scanner of our own (not only phonenumbers' matcher) so that
obfuscated numbers still count: digits split by spaces, dots or dashes, full-width or Thai
digits. A run counts only when phonenumbers says it is a valid number for one of the region
hints (Cambodia, Vietnam, China, Thailand by default). 10-digit numbers starting 08/09 are
valid in both Vietnam and Thailand: the text's script (Thai, Khmer, Chinese, Vietnamese
letters) or the caller's ``regions`` decides, else the order of ``DEFAULT_REGIONS``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import phonenumbers

ContactKind = Literal["phone", "telegram", "wechat", "line", "whatsapp", "zalo", "link"]
DEFAULT_REGIONS: tuple[str, ...] = ("KH", "VN", "CN", "TH")
# Numbers written with a country code but no "+" (common in Cambodian posts: "855 12 ...").
_BARE_COUNTRY_CODES = ("855", "84", "86", "66")
MIN_DIGITS, MAX_DIGITS = 8, 15  # E.164 allows at most 15 digits


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact found in a text: ``text[start:end] == raw``."""

    kind: ContactKind
    value: str
    raw: str
    start: int
    end: int


def extract_contacts(text: str, regions: Sequence[str] | None = None) -> list[Contact]:
    """Every phone, handle and link in ``text``, in text order (a value may repeat).

    ``regions`` (ISO codes) says how to read national-format numbers, most likely first;
    by default the text's script picks the order among KH, VN, CN and TH.
    """
    plain = _ascii_digits(text)
    order = tuple(regions) if regions else _region_order(text)
    found = _phones(text, plain, order)
    found += _url_contacts(text, plain, order)
    found += _keyword_handles(text, plain, order)
    return _dedupe(sorted(found, key=lambda c: (c.start, c.end, c.kind)))


# -- text normalisation -------------------------------------------------------------------


def _ascii_digits(text: str) -> str:
    """``text`` with full-width ASCII and every Unicode decimal digit mapped to ASCII.

    One character in, one out: offsets in the result are offsets in the original.
    """
    # Only the characters that change go through Python: a character-by-character loop took
    # 86 s on a hostile page of 50 MB of text.
    return _NOT_ASCII_FORM.sub(_ascii_form, text)


_NOT_ASCII_FORM = re.compile(r"[\uff01-\uff5e\u3000]|(?![0-9])\d")


def _ascii_form(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII block: ０-９, Ａ-Ｚ, ＋, ＠, ...
        return chr(code - 0xFEE0)
    if char == "\u3000":  # ideographic space
        return " "
    return str(unicodedata.decimal(char))  # any other script's decimal digit


_SCRIPT_HINTS = (
    ("TH", re.compile(r"[\u0e00-\u0e7f]")),
    ("KH", re.compile(r"[\u1780-\u17ff]")),
    ("CN", re.compile(r"[\u4e00-\u9fff]")),
    ("VN", re.compile(r"[ăâđêôơưĂÂĐÊÔƠƯ\u1ea0-\u1ef9]|\bzalo\b", re.IGNORECASE)),
)


def _region_order(text: str) -> tuple[str, ...]:
    """DEFAULT_REGIONS with the regions whose script (or messenger) the text uses first."""
    hinted = [region for region, pattern in _SCRIPT_HINTS if pattern.search(text)]
    return tuple(hinted) + tuple(r for r in DEFAULT_REGIONS if r not in hinted)


# -- phones --------------------------------------------------------------------------------

# A run of digits, up to three separators between them ("0 1 2 . 3 4 5"), maybe after "+".
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[ \t.\-–()]{0,3}\d)*")
_DIGIT_GROUP = re.compile(r"\d+")


def _phones(text: str, plain: str, regions: tuple[str, ...]) -> list[Contact]:
    found = []
    for run in _DIGIT_RUN.finditer(plain):
        if run.start() > 0 and (plain[run.start() - 1].isalnum() or plain[run.start() - 1] in "/_"):
            continue  # part of a word, URL path or handle, not a phone number
        after = plain[run.end() : run.end() + 1]
        if after.isascii() and after.isalpha():
            continue  # a model or serial code ("0912-345-67B"), not a phone number
        found += _phones_in_run(text, run, regions)
    return found


def _phones_in_run(text: str, run: re.Match[str], regions: tuple[str, ...]) -> list[Contact]:
    """Valid numbers in one digit run; a run of several numbers is split greedily."""
    plus = run.group().startswith("+")
    groups = [
        (g.group(), run.start() + g.start(), run.start() + g.end())
        for g in _DIGIT_GROUP.finditer(run.group())
    ]
    found, i = [], 0
    while i < len(groups):
        for j in range(len(groups), i, -1):  # longest candidate first
            digits = "".join(g[0] for g in groups[i:j])
            value = normalise_phone(("+" if plus and i == 0 else "") + digits, regions)
            if value:
                start = run.start() if plus and i == 0 else groups[i][1]
                end = groups[j - 1][2]
                found.append(Contact("phone", value, text[start:end], start, end))
                i = j
                break
        else:
            i += 1
    return found


def normalise_phone(number: str, regions: Sequence[str] = DEFAULT_REGIONS) -> str | None:
    """E.164 form of ``number`` ("+..." or national digits), or None when not valid.

    National numbers must start with the trunk prefix 0 (or be an 11-digit Chinese mobile
    starting with 1): a bare run of digits is far more often a price, date or order number.
    """
    plus = number.startswith("+")
    digits = re.sub(r"\D", "", _ascii_digits(number))
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS + 2:
        return None
    if plus:
        return _valid("+" + digits, None)
    if digits.startswith("00"):
        return _valid("+" + digits[2:], None)
    if digits.startswith("0") or (len(digits) == 11 and digits.startswith("1")):
        return next((v for r in regions if (v := _valid(digits, r))), None)
    if digits.startswith(_BARE_COUNTRY_CODES):
        return _valid("+" + digits, None)
    return None


def _valid(number: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# -- links and handles in links ------------------------------------------------------------

_URL = re.compile(
    r"(?:https?://|(?<![\w.@])(?=(?:www\.|t\.me/|telegram\.me/|wa\.me/|zalo\.me/|line\.me/)))"
    r"[^\s<>\"'`，。、）)]+",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}>'\"…"
_TG_NAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"


def _url_contacts(text: str, plain: str, regions: tuple[str, ...]) -> list[Contact]:
    found = []
    for match in _URL.finditer(plain):
        raw = match.group().rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(raw)
        contact = _messenger_link(raw, regions) or _link(raw)
        if contact:
            kind, value = contact
            found.append(Contact(kind, value, text[start:end], start, end))
    return found


def _messenger_link(raw: str, regions: tuple[str, ...]) -> tuple[ContactKind, str] | None:
    """t.me/<name>, wa.me/<number>, zalo.me/<number>, line.me/ti/p/~<id> as handles."""
    url = raw if "://" in raw else "https://" + raw
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = [p for p in parts.path.split("/") if p]
    if host in ("t.me", "telegram.me") and path:
        name = path[1] if path[0] == "s" and len(path) > 1 else path[0]
        if re.fullmatch(_TG_NAME, name) and name.lower() not in (
            "joinchat",
            "share",
            "addstickers",
        ):
            return "telegram", name.lower()
    if host == "wa.me" and path and (phone := normalise_phone("+" + path[0])):
        return "whatsapp", phone
    if host == "zalo.me" and path and (phone := normalise_phone(path[0], ("VN", *regions))):
        return "zalo", phone
    if host == "line.me" and len(path) >= 3 and path[:2] == ["ti", "p"]:
        return "line", path[2].lstrip("~").lower()
    return None


def _link(raw: str) -> tuple[ContactKind, str] | None:
    """An outbound link: lower-case scheme and host, no fragment, no default port."""
    url = raw if "://" in raw else "https://" + raw
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if "." not in host:
        return None
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = parts.path or "/"
    return "link", urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


# -- handles after a keyword ---------------------------------------------------------------

_SEP = r"\s*(?:id|ID|Id)?\s*[:：=\-]?\s*"
_HANDLES: list[tuple[ContactKind, re.Pattern[str]]] = [
    ("telegram", re.compile(rf"(?:telegram|tele|tg)\b{_SEP}@({_TG_NAME})\b", re.IGNORECASE)),
    (
        "wechat",
        re.compile(
            r"(?:wechat|weixin|微信号?|wx|vx)(?:\s*id)?\s*(?:号)?\s*[:：=]?\s*"
            r"([A-Za-z][A-Za-z0-9_\-]{5,19}|\+?\d[\d \-]{6,16}\d)",
            re.IGNORECASE,
        ),
    ),
    (
        "line",
        re.compile(
            r"(?:\bline|ไลน์|ไลน)(?:\s*id)?\s*[:：=]\s*(@?[A-Za-z0-9][A-Za-z0-9._\-]{2,19})",
            re.IGNORECASE,
        ),
    ),
    ("whatsapp", re.compile(rf"(?:whats\s?app|\bwa)\b{_SEP}(\+?\d[\d .\-()]{{6,20}}\d)", re.I)),
    ("zalo", re.compile(rf"\bzalo\b{_SEP}(\+?\d[\d .\-]{{6,16}}\d)", re.IGNORECASE)),
]


def _keyword_handles(text: str, plain: str, regions: tuple[str, ...]) -> list[Contact]:
    found = []
    for kind, pattern in _HANDLES:
        for match in pattern.finditer(plain):
            value = _handle_value(kind, match.group(1), regions)
            if value:
                start, end = match.span(1)
                found.append(Contact(kind, value, text[start:end], start, end))
    return found


def _handle_value(kind: ContactKind, raw: str, regions: tuple[str, ...]) -> str | None:
    if kind == "whatsapp":
        # WhatsApp numbers are international by nature; a national one uses the hints.
        return normalise_phone(raw, regions)
    if kind == "zalo":
        return normalise_phone(raw, ("VN", *regions))  # Zalo is Vietnamese
    if kind == "wechat" and raw[0] in "+0123456789":
        return normalise_phone(raw, ("CN", *regions))  # a WeChat ID may be its phone number
    return raw.lower()


def _dedupe(contacts: list[Contact]) -> list[Contact]:
    """Drop exact repeats (same kind, value and span) found by two patterns."""
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for c in contacts:
        key = (c.kind, c.value, c.start, c.end)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
