"""Print the table of every problem type Rempart answers with, from the code itself.

    python tools/problem_types.py                          # the markdown table
    python tools/problem_types.py --write docs/integration.md   # replace the table in the guide

Every ``RempartError`` subclass (its ``slug``, ``status`` and ``title``) in every module of the
package, and the framework's own refusals the app renders the same way (``rempart.app``'s table of
HTTP problems, the unexpected error, ``rempart.web.capacity``'s busy answer). The guide's copy sits
between two markers; ``tests/test_problem_types_doc.py`` fails when it is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

import rempart
from rempart import app
from rempart.errors import RempartError
from rempart.web import capacity

START = "<!-- problem-types:start (tools/problem_types.py --write docs/integration.md) -->"
END = "<!-- problem-types:end -->"


@dataclass(frozen=True, order=True)
class ProblemType:
    slug: str
    status: int
    title: str
    where: str  # the domains that raise it


def _import_everything() -> None:
    for module in pkgutil.walk_packages(rempart.__path__, prefix="rempart."):
        # Alembic's migration scripts run only under Alembic (they need its context); rempart.asgi
        # builds a whole runtime when imported (it is the server's entry point, defining nothing).
        if ".migrations" not in module.name and module.name != "rempart.asgi":
            importlib.import_module(module.name)


def _subclasses(cls: type[RempartError]) -> list[type[RempartError]]:
    found: list[type[RempartError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _domain(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "platform"  # rempart.errors, rempart.idempotency: everywhere


def problem_types() -> list[ProblemType]:
    _import_everything()
    seen: dict[tuple[str, int, str], set[str]] = {}
    # Only the package's own classes: a test that defines a subclass (tests/test_app.py) in the same
    # interpreter must not change the table.
    ours = [cls for cls in [RempartError, *_subclasses(RempartError)] if cls.__module__.startswith("rempart.")]
    for cls in ours:
        seen.setdefault((cls.slug, cls.status, cls.title), set()).add(_domain(cls.__module__))
    # The framework's refusals, rendered by the app's handlers (private tables: read, not changed).
    for status, (slug, title, _detail) in app._HTTP_PROBLEMS.items():
        seen.setdefault((slug, status, title), set()).add("platform")
    seen.setdefault(("internal-error", 500, "Internal error"), set()).add("platform")
    busy = json.loads(capacity._BUSY)
    seen.setdefault((busy["type"].rsplit("/", 1)[-1], busy["status"], busy["title"]), set()).add("platform")
    return sorted(ProblemType(slug, status, title, ", ".join(sorted(w))) for (slug, status, title), w in seen.items())


def table() -> str:
    rows = [
        "| type (after `https://rempart.example/problems/`) | status | title | raised by |",
        "|---|---|---|---|",
    ]
    rows += [f"| `{p.slug}` | {p.status} | {p.title} | {p.where} |" for p in problem_types()]
    return "\n".join(rows) + "\n"


def replaced(document: str, new_table: str) -> str:
    """``document`` with the text between the markers replaced by ``new_table``."""
    head, start, rest = document.partition(START)
    _old, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the document has no {START!r} … {END!r} section")
    return f"{head}{START}\n{new_table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", type=Path, help="replace the table between the markers of this file")
    args = parser.parse_args(argv)
    new_table = table()
    if args.write is None:
        sys.stdout.write(new_table)
        return 0
    args.write.write_text(replaced(args.write.read_text(), new_table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
