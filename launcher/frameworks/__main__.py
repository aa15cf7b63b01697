"""python -m launcher.frameworks [--check] [--json]: which frameworks and devices are usable here."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.frameworks", description=__doc__)
    parser.add_argument("--check", action="store_true", help="run a health check (a tiny fit) on each usable framework")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    args = parser.parse_args(argv)

    from launcher.frameworks.manager import FrameworkManager

    statuses = FrameworkManager(device=args.device).status(health_check=args.check)
    if args.json:
        print(json.dumps({k: v.to_dict() for k, v in statuses.items()}, indent=2))
        return 0
    rows = [("framework", "installed", "version", "enabled", "devices", "health", "detail")]
    for s in statuses.values():
        health = {None: "-", True: "ok", False: "FAILED"}[s.healthy]
        rows.append((s.name, "yes" if s.installed else "no", s.version or "-", "yes" if s.enabled else "no",
                     ",".join(s.devices) or "-", health, s.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
