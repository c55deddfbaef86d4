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
import pkgutil
import sys
from pathlib import Path

import rempart
from rempart import app
from rempart.web import problem_catalogue as catalogue
from rempart.web.problem_catalogue import ProblemType

START = "<!-- problem-types:start (tools/problem_types.py --write docs/integration.md) -->"
END = "<!-- problem-types:end -->"


def _import_everything() -> None:
    for module in pkgutil.walk_packages(rempart.__path__, prefix="rempart."):
        # Alembic's migration scripts run only under Alembic (they need its context); rempart.asgi
        # builds a whole runtime when imported (it is the server's entry point, defining nothing).
        if ".migrations" not in module.name and module.name != "rempart.asgi":
            importlib.import_module(module.name)


def problem_types() -> list[ProblemType]:
    """Every module imported first, so that every class is seen; then the same reading as the
    ``/problems/`` pages' (only the package's own classes: a test's subclass in the same interpreter,
    as tests/test_app.py defines, must not change the table). The app's table of HTTP problems is
    private: read, not changed."""
    _import_everything()
    return catalogue.problem_types(app._HTTP_PROBLEMS)


def table() -> str:
    rows = [
        "| type (after `/problems/`) | status | title | raised by |",
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
