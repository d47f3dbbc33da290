#!/usr/bin/env python3
"""Print the direct requirements ``make test-lowest`` installs at their lowest allowed versions.

    scripts/lowest-requirements.py [--extra web] [--pick dev=pytest,httpx]

The runtime dependencies always; ``--extra NAME`` adds a whole optional group, ``--pick
GROUP=a,b`` only the named members of one (the test runner, without the linters). The ranges
are printed as pyproject.toml writes them, so they cannot drift from it; ``uv pip install
--resolution lowest-direct`` then picks the oldest published release inside each (a bound
may name a version that was never published: ``hiredis>=2.3`` gets 2.3.2). A requirement
without a ``>=`` lower bound is refused: its oldest version is whatever is oldest on the
index, a range nobody means. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*)(;.*)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> re.Match[str]:
    match = REQUIREMENT.match(requirement)
    if not match:
        raise SystemExit(f"lowest-requirements: cannot read requirement {requirement!r} in pyproject.toml")
    return match


def checked(requirement: str) -> str:
    """``requirement`` itself, once it is known to carry one ``>=`` lower bound."""
    match = parse(requirement)
    lower = [s.strip()[2:].strip() for s in match["spec"].split(",") if s.strip().startswith(">=")]
    if len(lower) != 1:
        raise SystemExit(
            f"lowest-requirements: {requirement!r} in pyproject.toml needs exactly one '>=' lower bound "
            "so its oldest allowed version can be tested; add one"
        )
    return requirement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", action="append", default=[], metavar="NAME", help="a whole optional group")
    parser.add_argument("--pick", action="append", default=[], metavar="GROUP=a,b", help="some of a group")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)

    project = tomllib.loads(args.pyproject.read_text())["project"]
    groups: dict[str, list[str]] = project.get("optional-dependencies", {})
    chosen = list(project.get("dependencies", []))
    for extra in args.extra:
        if extra not in groups:
            parser.error(f"no optional group {extra!r} in {args.pyproject}; it has: {', '.join(groups)}")
        chosen += groups[extra]
    for pick in args.pick:
        group, _, names = pick.partition("=")
        if group not in groups:
            parser.error(f"no optional group {group!r} in {args.pyproject}; it has: {', '.join(groups)}")
        by_name = {canonical(parse(r)["name"]): r for r in groups[group]}
        for name in filter(None, names.split(",")):
            if canonical(name) not in by_name:
                parser.error(f"{name!r} is not in the {group!r} group of {args.pyproject}")
            chosen.append(by_name[canonical(name)])
    print("# Ranges from pyproject.toml, written by scripts/lowest-requirements.py; do not edit.")
    for requirement in chosen:
        print(checked(requirement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
