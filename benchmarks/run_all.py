"""Run every benchmark (``benchmarks/bench_*.py``) with modest defaults and write
``benchmarks/RESULTS.md``: the machine, the date (UTC), and each script's figures with its
baseline, exactly as the script printed them.

Run: .venv/bin/python benchmarks/run_all.py            (``make bench``; ~30-40 min on 2 cores)
     .venv/bin/python benchmarks/run_all.py --only bench_keywords bench_storage
     .venv/bin/python benchmarks/run_all.py --collect DIR   (RESULTS.md from saved outputs,
                                                   one DIR/<script>.txt per script)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"

# Modest defaults: every figure of the issue, in a bounded time on a 2-core machine.
ARGS: dict[str, list[str]] = {
    "bench_capture": ["--targets", "100", "--concurrency", "4", "--naive", "8"],
    "bench_latency": ["--samples", "12", "--targets", "3", "--every", "30"],
    "bench_soak": ["--captures", "300"],
    "bench_storage": ["--posts", "100000"],
    "bench_image_index": ["--sizes", "100000", "1000000", "10000000"],
    "bench_keywords": ["--posts", "20000"],
    "bench_evidence": [],
    "bench_coordinator": ["--targets", "20", "--naive", "4"],
    "bench_guard_proxy": ["--targets", "6", "--rounds", "4"],
}


def scripts() -> list[str]:
    """Every bench script, in the order of :data:`ARGS` then any new ones by name."""
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [s for s in ARGS if s in found] + [s for s in found if s not in ARGS]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    """Total RAM from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine() -> list[str]:
    """Markdown lines describing the machine."""
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    chromium = subprocess.run(
        ["chromium", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- `uname -a`: {uname.strip() or ' '.join(platform.uname())}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; RAM {memory_total()}",
        f"- load average when written: {load} (the machine is shared: wall times are noisy)",
        f"- Python {platform.python_version()}; {chromium or 'chromium: not on PATH'}",
    ]


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) CPU ticks of the machine since boot, from /proc/stat; (0, 0) elsewhere."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the CPU a virtual machine's host took between two :func:`cpu_ticks`: a run
    with a busy host is slower throughout, baselines included."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def run(name: str) -> tuple[str, float, int, float]:
    """Run one script; (its stdout+stderr tail, seconds, exit code, host's steal share)."""
    cmd = [sys.executable, str(HERE / f"{name}.py"), *ARGS.get(name, [])]
    print(f"running {' '.join(cmd[1:])}", flush=True)
    start, ticks = time.perf_counter(), cpu_ticks()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, check=False)
    output = done.stdout + (f"\n(stderr)\n{done.stderr[-2000:]}" if done.returncode else "")
    return output, time.perf_counter() - start, done.returncode, steal_share(ticks, cpu_ticks())


def section(name: str, output: str, note: str) -> list[str]:
    """The RESULTS.md section of one script."""
    return [f"## {name}", "", note, "", output.strip(), ""]


def write_results(sections: list[list[str]]) -> None:
    """Write RESULTS.md."""
    lines = ["# Benchmark results", "", *machine(), ""]
    lines += [
        "Written by `benchmarks/run_all.py` (`make bench`). Every figure below was printed",
        "by the script in the same run as its baseline.",
        "",
    ]
    for part in sections:
        lines += part
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


def main(args: argparse.Namespace) -> int:
    """Run (or collect) each script's output, then write RESULTS.md."""
    names = args.only or scripts()
    if args.collect and not args.only:
        names.append("profile_capture")  # when saved: the hot spots of one capture
    sections, failed = [], 0
    for name in names:
        if args.collect:
            saved = args.collect / f"{name}.txt"
            if not saved.exists():
                continue
            note = f"`{name}.py {' '.join(args.notes.get(name, []))}`".replace(" `", "`")
            sections.append(section(name, saved.read_text(), f"Command: {note}"))
            continue
        output, seconds, code, steal = run(name)
        failed += code != 0
        command = f"`{name}.py {' '.join(ARGS.get(name, []))}`".replace(" `", "`")
        note = f"Command: {command}; took {seconds:.0f} s; host steal {100 * steal:.0f} % of CPU."
        sections.append(section(name, output, note))
    write_results(sections)
    return 1 if failed else 0


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="script names (e.g. bench_keywords)")
    parser.add_argument("--collect", type=Path, help="build RESULTS.md from DIR/<script>.txt")
    args = parser.parse_args()
    args.notes = {}
    if args.collect:
        for path in args.collect.glob("*.cmd"):
            args.notes[path.stem] = path.read_text().split()
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args()))
