"""Which writing systems the installed fonts can draw, and a warning when a page needs one more.

Chromium draws a character no installed font has as an empty box ("tofu"). On a machine with
only DejaVu and Liberation that is every Khmer, Chinese, Thai, Lao, Burmese line and every
emoji: the screenshot, the piece of evidence a court looks at first, shows boxes where the
dealer's words were. Chromium finds fonts through fontconfig, so fontconfig is asked too:
``fc-list`` once per font configuration (its answer is cached), the union of every font's
character set against a few characters of each script.

A capture's page text is checked against that union; a script the fonts lack is logged once
per process (and font configuration), naming the script and the package that draws it, and
every capture's metadata records the font families and which scripts they cover.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import subprocess
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

log = logging.getLogger(__name__)

FC_LIST_TIMEOUT_S = 10.0
# Debian / Ubuntu packages; docs/deploy.md names them for other systems.
NOTO_CORE = "fonts-noto-core"
NOTO_CJK = "fonts-noto-cjk"
NOTO_EMOJI = "fonts-noto-color-emoji"
_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


@dataclass(frozen=True, slots=True)
class Script:
    """A writing system our users' targets write in.

    ``samples`` are characters every font for it has (a font with these draws the rest);
    ``ranges`` are the code points that belong to it, to find it in a page's text.
    """

    name: str
    samples: str
    ranges: tuple[tuple[int, int], ...]
    package: str


SCRIPTS: tuple[Script, ...] = (
    # Vietnamese needs the stacked diacritics of Latin Extended Additional.
    Script("Latin with Vietnamese", "Aaếữặđ", ((0x41, 0x24F), (0x1E00, 0x1EFF)), NOTO_CORE),
    Script("Khmer", "កខឃា្", ((0x1780, 0x17FF), (0x19E0, 0x19FF)), NOTO_CORE),
    Script("Thai", "กขฃา", ((0x0E00, 0x0E7F),), NOTO_CORE),
    Script("Lao", "ກຂຄາ", ((0x0E80, 0x0EFF),), NOTO_CORE),
    Script("Burmese", "ကခဂာ", ((0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F)), NOTO_CORE),
    # Simplified and traditional forms are different characters of the same blocks.
    Script("Chinese (simplified)", "象镯这贝", _HAN, NOTO_CJK),
    Script("Chinese (traditional)", "翡鐲這貝", _HAN, NOTO_CJK),
    Script("Japanese", "あカ漢", ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF)), NOTO_CJK),
    Script("Korean", "한글각", ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)), NOTO_CJK),
    Script(
        "Arabic",
        "عربي",
        ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
        NOTO_CORE,
    ),
    Script("emoji", "🔥📿🐘", ((0x1F000, 0x1FAFF), (0x2600, 0x27BF)), NOTO_EMOJI),
)
# What to suggest for a character of a script not in the table (Noto covers most of them).
OTHER = Script("other", "", (), NOTO_CORE)
# Letters, digits, punctuation and symbols are drawn; spaces, controls, joiners are not.
_DRAWN_CATEGORIES = frozenset("LNPS")


@dataclass(frozen=True)
class FontCoverage:
    """What the installed fonts draw: family names and the union of their character sets.

    ``checked`` is False when fontconfig could not be asked (then nothing is claimed).
    """

    families: tuple[str, ...]
    starts: tuple[int, ...] = ()  # sorted, non-overlapping ranges of covered code points
    ends: tuple[int, ...] = ()
    checked: bool = True
    problem: str = ""

    def covers(self, char: str) -> bool:
        """Whether some installed font has a glyph for ``char``."""
        point = ord(char)
        at = bisect.bisect_right(self.starts, point) - 1
        return at >= 0 and point <= self.ends[at]

    def covers_script(self, script: Script) -> bool:
        """Whether every sample character of ``script`` is drawable."""
        return all(self.covers(char) for char in script.samples)

    def scripts(self) -> dict[str, bool]:
        """Each of our scripts, covered or not."""
        return {script.name: self.covers_script(script) for script in SCRIPTS}

    def missing_in(self, text: str) -> list[Script]:
        """Our scripts (or :data:`OTHER`) with characters in ``text`` that no font draws."""
        if not self.checked:
            return []
        missing: dict[str, Script] = {}
        for char in set(text):
            if self.covers(char) or unicodedata.category(char)[0] not in _DRAWN_CATEGORIES:
                continue
            script = _script_of(char, self)
            missing.setdefault(script.name, script)
        return sorted(missing.values(), key=_table_order)

    def to_json(self) -> dict[str, object]:
        """For the capture's metadata: the families, and which of our scripts they draw."""
        if not self.checked:
            return {"checked": False, "problem": self.problem}
        return {"checked": True, "families": list(self.families), "scripts": self.scripts()}


def _script_of(char: str, coverage: FontCoverage) -> Script:
    point = ord(char)
    owners = [s for s in SCRIPTS if any(lo <= point <= hi for lo, hi in s.ranges)]
    if not owners:
        return OTHER
    # A Han character belongs to both Chinese forms: name the one the fonts lack.
    return next((s for s in owners if not coverage.covers_script(s)), owners[0])


def _table_order(script: Script) -> int:
    return SCRIPTS.index(script) if script in SCRIPTS else len(SCRIPTS)


# -- fontconfig ------------------------------------------------------------------------------
_FONTCONFIG_VARS = (
    "FONTCONFIG_FILE",
    "FONTCONFIG_PATH",
    "FONTCONFIG_SYSROOT",
    "HOME",
    "XDG_DATA_HOME",
)


def fontconfig_key(environ: dict[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The environment that decides which fonts fontconfig (and so Chromium) finds."""
    env = os.environ if environ is None else environ
    return tuple((name, env[name]) for name in _FONTCONFIG_VARS if name in env)


def installed_fonts(environ: dict[str, str] | None = None) -> FontCoverage:
    """The fonts fontconfig finds under ``environ`` (default: ours), asked once per setting."""
    return _coverage(fontconfig_key(environ))


@lru_cache(maxsize=8)
def _coverage(key: tuple[tuple[str, str], ...]) -> FontCoverage:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return FontCoverage((), checked=False, problem="fc-list (fontconfig) is not installed")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **dict(key)}
    try:
        out = subprocess.run(
            [fc_list, "--format", "%{family[0]}\t%{charset}\n"],
            capture_output=True,
            text=True,
            timeout=FC_LIST_TIMEOUT_S,
            check=False,
            env=env,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return FontCoverage((), checked=False, problem=f"fc-list failed: {exc}")
    return parse_fc_list(out)


def parse_fc_list(out: str) -> FontCoverage:
    """Coverage from ``fc-list --format '%{family[0]}\\t%{charset}\\n'`` output.

    fontconfig writes a charset as hex ranges and single code points: ``20-7e a0 1e00-1eff``.
    """
    families: set[str] = set()
    ranges: list[tuple[int, int]] = []
    for line in out.splitlines():
        family, _, charset = line.partition("\t")
        if family.strip():
            families.add(family.strip())
        for token in charset.split():
            low, _, high = token.partition("-")
            try:
                ranges.append((int(low, 16), int(high or low, 16)))
            except ValueError:
                continue  # not a range: fontconfig never writes one, but a wrapper might
    starts, ends = _merge(ranges)
    return FontCoverage(tuple(sorted(families)), tuple(starts), tuple(ends))


def _merge(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for low, high in sorted(ranges):
        if ends and low <= ends[-1] + 1:
            ends[-1] = max(ends[-1], high)
        else:
            starts.append(low)
            ends.append(high)
    return starts, ends


# -- the warning -----------------------------------------------------------------------------
@dataclass
class _Warned:
    seen: set[tuple[object, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_time(self, key: tuple[object, str]) -> bool:
        with self.lock:
            if key in self.seen:
                return False
            self.seen.add(key)
            return True


_WARNED = _Warned()


def check_page_text(text: str, target: str) -> dict[str, object]:
    """The fonts record of a capture whose page holds ``text``; warns of missing scripts.

    Each script is warned of once per process (and font configuration), not per capture:
    ``watcher run`` would otherwise say it every few minutes for every target.
    """
    key = fontconfig_key()
    coverage = _coverage(key)
    missing = coverage.missing_in(text)
    for script in missing:
        if _WARNED.first_time((key, script.name)):
            log.warning("%s", missing_font_message(script, target))
    record = coverage.to_json()
    if coverage.checked:
        record["page_scripts_without_font"] = [s.name for s in missing]
    return record


def missing_font_message(script: Script, target: str) -> str:
    """What to tell the operator when ``target``'s page needs a font for ``script``."""
    what = {"other": "text no installed font draws", "emoji": "emoji"}.get(
        script.name, f"{script.name} text"
    )
    return (
        f"the page of target {target} holds {what}: its screenshots show empty boxes "
        f"instead of those words. Install the fonts ({script.package} on Debian/Ubuntu: "
        f"`sudo apt-get install {script.package}`; other systems: docs/deploy.md, Fonts), "
        "then restart watcher"
    )
