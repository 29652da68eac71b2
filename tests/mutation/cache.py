"""mutmut's cache (.mutation/mutants): carried over a move of modules, and its survivors re-opened.

`reset`: every verdict but "killed" back to "not checked", so `make mutants-continue` runs the
survivors (and the mutants no test covered) again against today's tests; killed mutants whose
function did not change keep their verdict (mutmut checks each function's hash).

`migrate`: carry the cache over a move of modules, so a regrouping of the code costs no re-run
of the mutants whose functions did not change.

mutmut keeps each mutant's verdict beside a hash of its function, keyed by module path
(`mutants/pipeline/settings.py.meta`, mutant `pipeline.settings.x_f__mutmut_3`). When a module
moves, the cache under the old name is lost and every mutant is run again. This renames the
cache: each .meta file to its module's new path, and every mutant and function name in the
metas and in mutmut-stats.json to the new module name. mutmut then compares each function's hash
as usual: a function whose text changed in the move is run again, the others keep their verdict.

    python tests/mutation/cache.py migrate .mutation OLD=NEW [OLD=NEW ...]
    python tests/mutation/cache.py reset .mutation

with dotted module names, e.g. `pipeline.settings=pipeline.settings.tuning_settings`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def renamer(moves: dict[str, str]) -> re.Pattern[str]:
    """A pattern matching a moved module's name at the start of a mutant or function name."""
    names = sorted(moves, key=len, reverse=True)
    return re.compile(r"^(" + "|".join(re.escape(n) for n in names) + r")(?=\.)")


def renamed(name: str, pattern: re.Pattern[str], moves: dict[str, str]) -> str:
    return pattern.sub(lambda m: moves[m[1]], name, count=1)


def rename_tree(value: object, pattern: re.Pattern[str], moves: dict[str, str]) -> object:
    """Every string in a JSON value (dict keys included) with its module renamed."""
    if isinstance(value, str):
        return renamed(value, pattern, moves)
    if isinstance(value, list):
        return [rename_tree(v, pattern, moves) for v in value]
    if isinstance(value, dict):
        return {renamed(k, pattern, moves): rename_tree(v, pattern, moves) for k, v in value.items()}
    return value


def migrate(root: Path, moves: dict[str, str]) -> int:
    pattern = renamer(moves)
    mutants = root / "mutants"
    moved = 0
    for old, new in moves.items():
        meta = mutants / (old.replace(".", "/") + ".py.meta")
        if not meta.exists():
            continue
        data = rename_tree(json.loads(meta.read_text()), pattern, moves)
        target = mutants / (new.replace(".", "/") + ".py.meta")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=4))
        meta.unlink()
        for stale in (mutants / (old.replace(".", "/") + ".py"), mutants / (old.replace(".", "/") + ".py.spans")):
            stale.unlink(missing_ok=True)  # the mutated copy at the old path: mutmut writes the new one
        moved += 1
    stats = mutants / "mutmut-stats.json"
    if stats.exists():
        stats.write_text(json.dumps(rename_tree(json.loads(stats.read_text()), pattern, moves), indent=4))
    return moved


KILLED = (1, 3)  # mutmut's exit codes for a killed mutant (stats.status_by_exit_code)


def reset(root: Path) -> int:
    """Every verdict that is not a kill back to None (not checked); how many were reset."""
    count = 0
    for meta in (root / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        verdicts = data["exit_code_by_key"]
        opened = {k: None for k, v in verdicts.items() if v is not None and v not in KILLED}
        if opened:
            verdicts.update(opened)
            meta.write_text(json.dumps(data, indent=4))
            count += len(opened)
    return count


def main(argv: list[str]) -> int:
    command, root, *pairs = argv
    if command == "reset":
        print(f"{reset(Path(root))} verdicts re-opened")
    else:
        moves = dict(pair.split("=", 1) for pair in pairs)
        print(f"{migrate(Path(root), moves)} of {len(moves)} modules' caches moved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
