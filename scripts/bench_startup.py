"""Benchmark: what the start-up hook (``lm_eval_rankacc_autoload.pth``) costs
every Python start in an environment, measured side by side in one run.

Three ways of starting ``python``, with the same interpreter, environment
variables and ``site-packages``:

- ``on``: the hook as installed;
- ``off``: the hook switched off with ``LM_EVAL_RANKACC_AUTOLOAD=0``;
- ``removed``: the hook's ``.pth`` file skipped, everything else processed.

The baseline: not a bare venv, which also drops every other ``.pth`` file and
package of the environment, nor ``python -I``, which drops the user site and
the environment variables; the start-up of the same environment without our
``.pth`` file. Each variant runs ``python -S -c "...; site.main()"``, which
does what ``python`` does at start without ``-S`` (``sys.path[0]`` is set
aside meanwhile, as Python adds it only after ``site``), the ``removed`` one
skipping our file. Plain ``python -c pass`` with the hook on and off, and
``python -S -c pass`` (no ``site`` at all), are timed beside them: the plain
runs match the explicit ones, and the last shows what ``site`` itself costs.
Every command runs in an empty folder.

Two measures, each the median of ``--runs`` runs, the variants interleaved
so that a change of load hits each alike:

- ``-X importtime``: the cumulative import time of the modules the hook's
  line imports (the outermost entries named ``lm_eval_rankacc*``), and the
  modules it adds to ``sys.modules`` compared with ``removed``;
- the wall time of the whole process (start to exit) of each command.

``--python`` measures another interpreter, e.g. a fresh venv's with only this
package installed (``python -m venv v && v/bin/pip install --no-deps
lm_eval_rankacc-*.whl``): the cost of the hook alone, where nothing else has
already imported what the hook imports.

    python scripts/bench_startup.py --runs 60 [--python v/bin/python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ENV = "LM_EVAL_RANKACC_AUTOLOAD"
PYTHON = sys.executable
CWD = None  # every command runs in an empty temporary folder (main)
PTH = "lm_eval_rankacc_autoload.pth"

# What ``python`` does at start without -S, with sys.path[0] ('' for -c, which
# Python adds only after ``site`` has run) set aside meanwhile.
_SITE = (
    "import sys\n"
    "_first = sys.path.pop(0)\n"
    "import site\n"
    "{skip}"
    "site.main()\n"
    "sys.path.insert(0, _first)\n"
)
_SKIP_OUR_PTH = (
    "_add = site.addpackage\n"
    f"site.addpackage = lambda d, n, k: k if n == {PTH!r} else _add(d, n, k)\n"
)

# name -> (extra environment, python arguments)
VARIANTS = {
    "on": ({}, ["-S", "-c", _SITE.format(skip="")]),
    "off": ({ENV: "0"}, ["-S", "-c", _SITE.format(skip="")]),
    "removed": ({}, ["-S", "-c", _SITE.format(skip=_SKIP_OUR_PTH)]),
}
PLAIN = {
    "python -c pass": ({}, ["-c", "pass"]),
    f"{ENV}=0 python -c pass": ({ENV: "0"}, ["-c", "pass"]),
    "python -S -c pass (no site)": ({}, ["-S", "-c", "pass"]),
}


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "PYTHONPROFILEIMPORTTIME")}
    env.update(extra)
    return env


def parse_importtime(stderr: str) -> list[tuple[int, str, int]]:
    """(depth, module, cumulative microseconds) of each ``-X importtime`` line."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _self, cumulative, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((depth, name.strip(), int(cumulative)))
    return rows


def hook_import_us(stderr: str) -> int:
    """Cumulative microseconds of the imports of the hook's line: the outermost
    entries named ``lm_eval_rankacc*`` (inside ``site`` in a plain start)."""
    ours = [(depth, us) for depth, name, us in parse_importtime(stderr) if name.startswith("lm_eval_rankacc")]
    top = min((depth for depth, _ in ours), default=0)
    return sum(us for depth, us in ours if depth == top)


def run(extra_env: dict[str, str], args: list[str], importtime: bool = False) -> subprocess.CompletedProcess:
    cmd = [PYTHON, *(["-X", "importtime"] if importtime else []), *args]
    out = subprocess.run(cmd, env=environment(extra_env), capture_output=True, text=True, cwd=CWD)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return out


def modules_added(extra_env: dict[str, str], args: list[str]) -> set[str]:
    show = "print(' '.join(sys.modules))\n"
    base_env, base_args = VARIANTS["removed"]
    before = set(run(base_env, [*base_args[:-1], base_args[-1] + show]).stdout.split())
    after = set(run(extra_env, [*args[:-1], args[-1] + show]).stdout.split())
    return after - before


def wall_times(commands: dict[str, tuple[dict, list]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (extra_env, args) in commands.items():
            env = environment(extra_env)
            cmd = [PYTHON, *args]
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, cwd=CWD)
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs per variant (median reported)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to measure (e.g. a fresh venv's, with only this package installed)")
    args = parser.parse_args()
    global PYTHON, CWD
    PYTHON = args.python
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as CWD:  # empty: shadows and slows nothing
        report(args.runs)


def report(runs: int) -> None:
    version = run({}, ["-c", "import sys; print(sys.version.split()[0])"]).stdout.strip()
    print(f"python {version} at {PYTHON}; {runs} runs per variant\n")

    print("python -X importtime -c pass: the hook's imports (median cumulative), and the modules it adds")
    plain = list(PLAIN.items())[:2]
    importtimes = {name: [] for name, _ in plain}
    for _ in range(runs):
        for name, (extra_env, argv) in plain:
            importtimes[name].append(hook_import_us(run(extra_env, argv, importtime=True).stderr))
    for (name, _), (extra_env, argv) in zip(plain, (VARIANTS["on"], VARIANTS["off"])):
        added = sorted(modules_added(extra_env, argv))
        shown = " ".join(added) if len(added) <= 12 else " ".join(added[:12]) + f" ... ({len(added)} in all)"
        print(f"  {name:42} {statistics.median(importtimes[name]) / 1000:6.2f} ms   +{len(added)} modules: {shown or '-'}")

    print("\nwall time of the whole process (median, min)")
    commands = {f"{name} (python -S -c '... site.main()')": spec for name, spec in VARIANTS.items()}
    commands.update(PLAIN)
    times = wall_times(commands, runs)
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    base = medians[next(n for n in commands if n.startswith("removed"))]
    for name, t in times.items():
        print(f"  {name:42} {medians[name]:6.1f} ms  (min {min(t) * 1000:5.1f})  {medians[name] - base:+6.1f} ms vs removed")


if __name__ == "__main__":
    main()
