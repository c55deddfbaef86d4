"""Run every benchmark module in this folder (or the ones named): `python -m bench [name ...]`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    # Read, not imported: some modules build a server app when imported.
    runnable = [name for name in known if "\ndef main(" in (here / f"{name}.py").read_text()]
    unknown = [name for name in argv if name not in known and name not in {"-h", "--help"}]
    if unknown or {"-h", "--help"} & set(argv):
        print(__doc__.strip())
        print("benchmarks: " + ", ".join(runnable) + "; each takes its own options: python -m bench.<name> --help")
        return 0 if not unknown else 2
    names = argv or runnable
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.perf_counter()
        try:
            module.main([])
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"=== bench.{name}: {time.perf_counter() - started:.1f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
