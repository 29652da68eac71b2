"""Summarize a `mutmut run` (run from .mutation/ by `make mutants`) as Markdown on stdout.

The score counts killed mutants among all the non-equivalent ones, per package: a mutant no test
covers (mutmut's "no tests") counts as not killed, like a survivor. Equivalent mutants
(changes no test can observe, because behaviour does not change) are listed with the reason in
tests/mutation/equivalent.txt as `<mutant name or fnmatch pattern>: <reason>`; every survivor not
listed there is printed, so it can be killed with a test or argued equivalent, and so is every
line of the file that matches no mutant (an argument left behind by a change).

When a run could not reach every mutant, `tests/mutation/sample.txt` names a random sample of the
ones left (drawn with a fixed seed by `python tests/mutation_report.py --draw N PATTERN`, run by
`make mutants-continue ARGS="$(cat tests/mutation/sample.txt)"`). The report then gives the
score as measured (mutants not run count as not killed, a lower bound) and an estimate: the mutants
not run counted at the sample's kill rate, with the 90% Wilson interval of that rate. Mutants run
on purpose (`tests/mutation/targeted.txt`, e.g. the last run's survivors) count as measured and
stay out of the sample's rate.
"""

from __future__ import annotations

import fnmatch
import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

EQUIVALENT = Path(__file__).parent / "mutation" / "equivalent.txt"
SAMPLE = Path(__file__).parent / "mutation" / "sample.txt"
# Mutants run on purpose (the last run's survivors, after tests were written for them): measured,
# so a stratum of their own, left out of the sample's rate, which estimates only the mutants not run.
TARGETED = Path(__file__).parent / "mutation" / "targeted.txt"
Z90 = 1.6449  # the standard normal's 95th percentile: a two-sided 90% interval


def wilson(successes: int, n: int, z: float = Z90) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (Wilson 1927)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def draw(n: int, pattern: str, status: dict[str, str], seed: int = 20261207) -> list[str]:
    """`n` of the mutants matching `pattern` that no run has reached, chosen at random (fixed seed)."""
    left = sorted(name for name in fnmatch.filter(status, pattern) if status[name] == "not checked")
    return sorted(random.Random(seed).sample(left, min(n, len(left))))


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


def estimate(
    names: list[str], status: dict[str, str], equivalent: dict[str, str], targeted: frozenset[str] = frozenset()
) -> str:
    """The score with the mutants not run counted at the sample's kill rate, and its 90% interval.
    The sample's rate leaves out `targeted` mutants: run on purpose, they are measured, not estimated
    (a uniform sample restricted to the other mutants is a uniform sample of those)."""
    sample = [n for n in SAMPLE.read_text().split() if n in names] if SAMPLE.exists() else []
    judged_sample = [n for n in sample if n not in equivalent and n not in targeted and status[n] != "not checked"]
    if not judged_sample:
        return ""
    hits = sum(status[n] in ("killed", "timeout") for n in judged_sample)
    kept = [n for n in names if n not in equivalent]
    killed = sum(status[n] in ("killed", "timeout") for n in kept)
    left = sum(status[n] == "not checked" for n in kept)
    low, high = wilson(hits, len(judged_sample))
    rate = hits / len(judged_sample)
    return (
        f"{(killed + rate * left) / len(kept):.1%} (90%: {(killed + low * left) / len(kept):.1%}–"
        f"{(killed + high * left) / len(kept):.1%}; {left} not run, sample {hits}/{len(judged_sample)} killed)"
    )


def main() -> None:
    status = statuses()
    if sys.argv[1:2] == ["--draw"]:
        print("\n".join(draw(int(sys.argv[2]), sys.argv[3], status)))
        return
    equivalent, stale = equivalents(sorted(status))
    targeted = frozenset(TARGETED.read_text().split()) if TARGETED.exists() else frozenset()
    print("# Mutation testing: `make mutants` (mutmut over lambdas/pipeline and lambdas/handlers)\n")
    print(
        "| package | mutants | killed | timeout | survived | equivalent | not run or no covering test "
        "| score (killed / non-equivalent) | estimate, if some were not run |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for package in ("pipeline", "handlers"):
        names = [n for n in status if n.startswith(f"{package}.")]
        counts = Counter("equivalent" if n in equivalent else status[n] for n in names)
        killed = counts["killed"] + counts["timeout"]
        not_run = counts["not checked"] + counts["skipped"] + counts["no tests"]
        judged = killed + counts["survived"] + counts["suspicious"] + not_run
        score = f"{killed / judged:.1%}" if judged else "n/a"
        print(
            f"| `{package}` | {len(names)} | {counts['killed']} | {counts['timeout']} | {counts['survived']} | "
            f"{counts['equivalent']} | {not_run} | {score} | {estimate(names, status, equivalent, targeted) or '-'} |"
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
