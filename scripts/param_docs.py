#!/usr/bin/env python3
"""Write the parameter tables of docs/architecture.md from the nodes' parameter declarations.

Each node declares its parameters once (`PARAMETERS` in `evo1_ros/nodes/<node>.py`, see
evo1_ros/parameters.py). The tables between ``<!-- params:<node> -->`` and ``<!-- /params -->`` are
generated from those declarations, like ros2_control's generate_parameter_library generates its docs:

    .venv/bin/python scripts/param_docs.py          # rewrite the tables
    .venv/bin/python scripts/param_docs.py --check  # exit 1 naming each stale table (a test runs this)
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evo1_ros.parameters import ParamSpec, param_specs  # noqa: E402

DOC = REPO / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- params:(?P<node>\w+) -->\n)(?P<body>.*?)(<!-- /params -->)", re.S)


def _number(value: float) -> str:
    return f"{value:g}"


def _flow(value: Any) -> str:
    """A value as it reads in YAML flow style (what users write in config/*.yaml)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value else '""'
    return repr(value)


def _meaning(spec: ParamSpec) -> str:
    text = spec.description
    if spec.min is not None or spec.max is not None:
        lo = "-∞" if spec.min is None else _number(spec.min)
        hi = "∞" if spec.max is None else _number(spec.max)
        text += f"; range [{lo}, {hi}]"
    if spec.choices:
        text += "; one of " + ", ".join(f"`{c}`" for c in spec.choices)
    if spec.read_only:
        text += "; read-only"
    return text.replace("|", "\\|")


def table(node: str) -> str:
    """The markdown block (heading + table) for `node`'s declared parameters."""
    specs = param_specs(importlib.import_module(f"evo1_ros.nodes.{node}").PARAMETERS)
    lines = [
        f"#### Parameters (`config/{node}.yaml`)",
        "",
        "| parameter | default | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{s.name}` | `{_flow(s.default)}` | {_meaning(s)} |" for s in specs]
    return "\n".join(lines) + "\n"


def render(text: str) -> tuple[str, list[str]]:
    """`text` with every parameter block regenerated, and the nodes whose block changed."""
    stale: list[str] = []

    def replace(match: re.Match[str]) -> str:
        body = table(match["node"])
        if body != match["body"]:
            stale.append(match["node"])
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text), stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report stale tables (exit 1 if any)")
    args = parser.parse_args(argv)
    text = DOC.read_text()
    new, stale = render(text)
    if args.check:
        for node in stale:
            print(f"{DOC.relative_to(REPO)}: parameter table of '{node}' is stale; run scripts/param_docs.py")
        return 1 if stale else 0
    if stale:
        DOC.write_text(new)
        print(f"rewrote the parameter tables of: {', '.join(stale)}")
    else:
        print("parameter tables are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
