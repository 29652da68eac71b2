"""Summarize a `mutmut run` (run from .mutation/ by `make mutants`) as Markdown on stdout.

The score counts killed mutants among all the non-equivalent ones, per package: a mutant no test
covers (mutmut's "no tests") counts as not killed, like a survivor. Equivalent mutants
(changes no test can observe, because behaviour does not change) are listed with the reason in
tests/mutation/equivalent.txt as `<mutant name or fnmatch pattern>: <reason>`; every survivor not
listed there is printed, so it can be killed with a test or argued equivalent, and so is every
line of the file that matches no mutant (an argument left behind by a change).
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from collections import Counter
from pathlib import Path

EQUIVALENT = Path(__file__).parent / "mutation" / "equivalent.txt"


def statuses() -> dict[str, str]:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.strip().rsplit(": ", 1) for line in out.splitlines() if ": " in line)


def equivalents(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Each mutant argued equivalent, with its reason; and the lines that match no mutant."""
    if not EQUIVALENT.exists():
        return {}, []
    lines = [line for line in EQUIVALENT.read_text().splitlines() if line.strip() and not line.startswith("#")]
    found: dict[str, str] = {}
    stale = []
    for pattern, reason in (line.split(": ", 1) for line in lines):
        matched = fnmatch.filter(names, pattern)
        found.update({name: reason for name in matched if name not in found})
        if not matched:
            stale.append(pattern)
    return found, stale


def main() -> None:
    status = statuses()
    equivalent, stale = equivalents(sorted(status))
    print("# Mutation testing: `make mutants` (mutmut over lambdas/pipeline and lambdas/handlers)\n")
    print(
        "| package | mutants | killed | timeout | survived | equivalent | no covering test | score (killed / non-equivalent) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for package in ("pipeline", "handlers"):
        names = [n for n in status if n.startswith(f"{package}.")]
        counts = Counter("equivalent" if n in equivalent else status[n] for n in names)
        killed = counts["killed"] + counts["timeout"]
        not_run = counts["not checked"] + counts["skipped"] + counts["no tests"]
        judged = killed + counts["survived"] + counts["suspicious"] + not_run
        score = f"{killed / judged:.1%}" if judged else "n/a"
        print(
            f"| `{package}` | {len(names)} | {counts['killed']} | {counts['timeout']} | {counts['survived']} | "
            f"{counts['equivalent']} | {not_run} | {score} |"
        )
    print("\n## Surviving mutants (not argued equivalent)\n")
    for name in sorted(n for n, s in status.items() if s in ("survived", "suspicious") and n not in equivalent):
        print(f"- `{name}`")
    print("\n## Mutants with no covering test\n")
    for name in sorted(n for n, s in status.items() if s == "no tests" and n not in equivalent):
        print(f"- `{name}`")
    print("\n## Equivalent mutants\n")
    for name, reason in sorted(equivalent.items()):
        print(f"- `{name}`: {reason}")
    if stale:
        print("\n## Lines of equivalent.txt that match no mutant (remove or update them)\n")
        for pattern in stale:
            print(f"- `{pattern}`")


if __name__ == "__main__":
    main()
