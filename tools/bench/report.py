#!/usr/bin/env python3
"""Assembles BENCHMARKS.md: tools/bench/BENCHMARKS.in.md with each `@@name@@` line replaced by
docs/benchmarks/<name>.md as its benchmark wrote it (links to its files made relative to the
repository's root). Run by every tools/bench-*.sh at its end; standard library only."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
results = root / "docs" / "benchmarks"
text = (root / "tools" / "bench" / "BENCHMARKS.in.md").read_text()


def section(match: re.Match) -> str:
    name = match.group(1)
    path = results / f"{name}.md"
    if not path.is_file():
        return f"_No results yet: run the command above ({path.relative_to(root)} is missing)._"
    body = path.read_text().strip()
    # Image links in a result file are relative to docs/benchmarks/.
    return re.sub(r"\]\((?!https?:|/|docs/)([^)]+)\)", r"](docs/benchmarks/\1)", body)


out = re.sub(r"^@@([a-z-]+)@@$", section, text, flags=re.M)
(root / "BENCHMARKS.md").write_text(out)
print(f"wrote {root / 'BENCHMARKS.md'}", file=sys.stderr)
