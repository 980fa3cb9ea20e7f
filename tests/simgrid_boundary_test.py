#!/usr/bin/env python3
"""Only the platform builder and sim/engine may include SimGrid.

Everything else (cost, memory, serving, metrics, the CLI) stays plain C++
that tests run in-process and the planner calls without a simulation. The
check follows includes transitively, so an engine header that pulls SimGrid
in counts against every file outside the engine that includes it. Fails
naming each offender and the include chain. Run from the repository root.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
ALLOWED = re.compile(r'^sim/(engine/|hardware/platform_builder\.(h|cc)$)')


def includes(path):
    return INCLUDE.findall(path.read_text(encoding="utf-8"))


def simgrid_chain(name, seen):
    """The include chain from `name` to SimGrid, or None."""
    if name.startswith(("simgrid/", "xbt/", "xbt.h", "simgrid.h")):
        return [name]
    path = pathlib.Path(name)
    if not name.startswith("sim/") or not path.is_file() or name in seen:
        return None
    seen.add(name)
    for included in includes(path):
        chain = simgrid_chain(included, seen)
        if chain:
            return [name] + chain
    return None


offenders = []
for path in sorted(pathlib.Path("sim").rglob("*")):
    name = path.as_posix()
    if path.suffix not in (".h", ".cc") or ALLOWED.match(name):
        continue
    chain = simgrid_chain(name, set())
    if chain:
        offenders.append(" -> ".join(chain))
if offenders:
    print("SimGrid is reached outside sim/engine and the platform builder:")
    print("\n".join(offenders))
    sys.exit(1)
print("SimGrid is included only by sim/engine and sim/hardware/platform_builder")
