"""mypy on the geometry and the store, held to a baseline of known errors that only shrinks.

    python scripts/mypy_baseline.py            # fail on any error not in the baseline
    python scripts/mypy_baseline.py --update   # rewrite the baseline after fixing errors

An error is keyed by file, message and code, not by line, so edits above it do not move it. A new
error fails the check; a fixed one is reported, and ``--update`` drops it from the baseline.
``--update`` refuses to add errors: the baseline only shrinks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scripts" / "mypy_baseline.txt"
ERROR = re.compile(r"^(?P<file>[^:]+):\d+: error: (?P<message>.*)$")


def current_errors() -> Counter[str]:
    """``file: message [code]`` of every mypy error now, with multiplicity."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (configuration, crash)
        sys.exit(proc.stdout + proc.stderr)
    found = Counter()
    for line in proc.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            found[f"{match['file']}: {match['message']}"] += 1
    return found


def main(argv: list[str]) -> int:
    baseline = Counter(BASELINE.read_text(encoding="utf-8").splitlines())
    now = current_errors()
    new, fixed = now - baseline, baseline - now
    if new:
        print(f"{sum(new.values())} mypy error(s) not in {BASELINE.relative_to(REPO)}:")
        print("\n".join(sorted(new.elements())))
        print("Fix them (run `python -m mypy` for their lines); the baseline never grows.")
        return 1
    if fixed and "--update" in argv:
        BASELINE.write_text("".join(f"{e}\n" for e in sorted(now.elements())), encoding="utf-8")
        print(f"baseline: {sum(baseline.values())} -> {sum(now.values())} errors")
    elif fixed:
        print(f"{sum(fixed.values())} baseline error(s) fixed: run with --update to drop them.")
    print(f"mypy: {sum(now.values())} known errors, none new")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
