#!/usr/bin/env python3
"""Checks Autobahn TestSuite reports (as kosoku writes them).

    python3 scripts/check_autobahn.py reports/server reports/client

Each argument is a report directory holding an ``index.json`` of the form
``{agent: {case_id: {"behavior", "behaviorClose", "reportfile", ...}}}``;
the side's name is the directory's name. A case passes when its
``behavior`` is OK or INFORMATIONAL and its ``behaviorClose`` is OK or
INFORMATIONAL. NON-STRICT, UNIMPLEMENTED, FAILED, ERROR, WRONG CODE, UNCLEAN
and the rest all fail.

Autobahn gives ``behaviorClose`` INFORMATIONAL only where the spec leaves the
closing undefined (7.1.6 and 7.13.x set it whatever the peer does), so it is
accepted there; demanding OK would fail those cases for every implementation.

Prints one summary line per side, the failing cases with what their reports
say, and a closing ``autobahn: N passed, N failed`` line. Exits 1 if any case
failed or a report is missing, 0 otherwise. Standard library only.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any

PASSING_BEHAVIOR = {"OK", "INFORMATIONAL"}
PASSING_CLOSE = {"OK", "INFORMATIONAL"}
MAX_EVENTS_SHOWN = 4
MAX_TEXT = 160


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


def plain(text: Any) -> str:
    """Report text without its HTML markup, on one line, shortened."""
    text = html.unescape(re.sub(r"<[^>]+>", "", str(text or "")))
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def events(items: Any) -> str:
    items = list(items or [])
    shown = ", ".join(plain(json.dumps(item))[:60] for item in items[:MAX_EVENTS_SHOWN])
    more = f", ... ({len(items)} in all)" if len(items) > MAX_EVENTS_SHOWN else ""
    return f"[{shown}{more}]"


def describe(report_dir: Path, case_id: str, entry: dict[str, Any]) -> list[str]:
    lines = [
        f"  {case_id}: behavior {entry.get('behavior')}, "
        f"close {entry.get('behaviorClose')}, "
        f"remote close code {entry.get('remoteCloseCode')}"
    ]
    report_file = report_dir / str(entry.get("reportfile", ""))
    try:
        case = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        lines.append(f"      (no case report: {error})")
        return lines
    lines.append(f"      description: {plain(case.get('description'))}")
    lines.append(f"      expectation: {plain(case.get('expectation'))}")
    lines.append(f"      result:      {plain(case.get('result'))}")
    lines.append(f"      close:       {plain(case.get('resultClose'))}")
    expected = case.get("expected") or {}
    for verdict in sorted(expected):
        lines.append(f"      expected {verdict}: {events(expected[verdict])}")
    lines.append(f"      received:    {events(case.get('received'))}")
    expected_close = case.get("expectedClose") or {}
    lines.append(
        f"      close codes: expected {expected_close.get('closeCode')}, "
        f"sent {case.get('localCloseCode')}, received {case.get('remoteCloseCode')}"
    )
    return lines


def check(report_dir: Path) -> tuple[int, int, list[str]]:
    """Returns (passed, failed, lines to print) for one report directory."""
    side = report_dir.name
    index_file = report_dir / "index.json"
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return 0, 1, [f"{side}: no usable report at {index_file}: {error}"]
    cases = [
        (agent, case_id, entry)
        for agent, agent_cases in index.items()
        for case_id, entry in agent_cases.items()
    ]
    if not cases:
        return 0, 1, [f"{side}: {index_file} lists no cases"]
    failing = [
        (agent, case_id, entry)
        for agent, case_id, entry in cases
        if entry.get("behavior") not in PASSING_BEHAVIOR
        or entry.get("behaviorClose") not in PASSING_CLOSE
    ]
    failing.sort(key=lambda c: (c[0], case_key(c[1])))
    passed = len(cases) - len(failing)
    lines = [f"{side}: {len(cases)} cases, {passed} passed, {len(failing)} failed"]
    for _agent, case_id, entry in failing:
        lines.extend(describe(report_dir, case_id, entry))
    return passed, len(failing), lines


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: check_autobahn.py REPORT_DIR...", file=sys.stderr)
        return 2
    total_passed = total_failed = 0
    summaries = []
    for arg in argv:
        passed, failed, lines = check(Path(arg))
        total_passed += passed
        total_failed += failed
        summaries.append(lines[0])
        print("\n".join(lines))
    if len(argv) > 1:
        print("\n".join(summaries))
    print(f"autobahn: {total_passed} passed, {total_failed} failed")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
