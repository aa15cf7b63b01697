"""python -m launcher.frameworks [check=true] [json=true] [device=auto|cpu|gpu]: which frameworks
and devices are usable here."""
from __future__ import annotations

import json

from launcher.core import cli

OPTIONS = {"check": "true: also fit a tiny model with each usable framework",
           "json": "true: print JSON instead of a table",
           "device": "auto (default), cpu or gpu: the device config the adapters see"}
USAGE = cli.usage_text("python -m launcher.frameworks [check=true] [json=true] [device=auto|cpu|gpu]", OPTIONS)


def main(argv: list[str]) -> int:
    args = cli.parse(argv, OPTIONS, USAGE)
    from launcher.frameworks import registry
    from launcher.io import format_table

    statuses = [registry.status(name, args.get("device", "auto"), health_check=args.flag("check"))
                for name in registry.FRAMEWORKS]
    if args.flag("json"):
        print(json.dumps({s.name: s.to_dict() for s in statuses}, indent=2))
        return 0
    rows = [("framework", "installed", "version", "enabled", "devices", "health", "detail")]
    for s in statuses:
        health = {None: "-", True: "ok", False: "FAILED"}[s.healthy]
        rows.append((s.name, "yes" if s.installed else "no", s.version or "-", "yes" if s.enabled else "no",
                     ",".join(s.devices) or "-", health, s.detail))
    print(format_table(rows, underline=False))
    return 0


if __name__ == "__main__":
    cli.run(main)
