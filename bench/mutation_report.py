"""Turn a mutmut run into bench/results/mutation.md (called by bench/mutation.sh).

Reads mutmut's results through its CLI (`mutmut results --all true`, `mutmut show NAME`), run from
the directory that holds mutants/, so it depends on mutmut's command-line output and not on the
layout of its meta files. Per module: mutants generated, killed, survived, no tests (no selected
test calls the function), timeout / suspicious (incl. segfaults), equivalent, and
score = killed / (generated - equivalent). Survivors are listed with file:line and the mutation, the
functions that no test calls with their number of mutants.

Equivalent mutants are declared by hand in bench/mutation_equivalent.tsv, one per line:
    MUTANT_NAME<TAB>one-line reason
Only survivors can be declared equivalent; a declaration whose mutant is gone is reported as stale.

The numbers of each module are kept in bench/results/mutation.json, so running one module later
(bash bench/mutation.sh mbrl_ray/planners) replaces that module's rows and keeps the others.

    python bench/mutation_report.py --modules mbrl_ray/replay --timings T.tsv [--mutmut BIN]
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.tsv"

KILLED = {"killed"}
UNDETECTED = {"survived", "no tests"}        # not killed; survivors are listed with their mutation
TIMEOUT_LIKE = {"timeout", "suspicious", "segfault"}


def module_of(name: str) -> str:
    """Dotted module of a mutant name: 'mbrl_ray.replay.buffer.xǁReplayBufferǁadd__mutmut_3'."""
    parts = name.split(".")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    raise ValueError(f"not a mutmut mutant name: {name}")


def function_of(name: str) -> tuple[str | None, str]:
    """(class, function) of a mutant name."""
    mangled = name.rpartition(".")[2].partition("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        _, cls, func = mangled.split("ǁ")
        return cls, func
    return None, mangled[2:]


def source_file(module: str, cwd: Path) -> Path:
    rel = Path(*module.split("."))
    for cand in (rel.with_suffix(".py"), rel / "__init__.py"):
        if (cwd / cand).exists():
            return cand
    raise FileNotFoundError(f"no source file for {module}")


def mutant_key(name: str) -> tuple[str, int]:
    head, _, num = name.rpartition("__mutmut_")
    return head, int(num) if num.isdigit() else 0


def parse_results(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s+(\S+): (.+)$", line)
        if m and "__mutmut_" in m.group(1):
            out[m.group(1)] = m.group(2).strip()
    return out


def changed_lines(diff: str) -> tuple[int | None, list[str], list[str]]:
    """Line of the first removed line inside the function's code (1-based), removed and added lines."""
    old_line, first_removed, removed, added = None, None, [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        m = re.match(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@", line)
        if m:
            old_line = int(m.group(1))
            continue
        if old_line is None:
            continue
        if line.startswith("-"):
            removed.append(line[1:])
            if first_removed is None:
                first_removed = old_line
            old_line += 1
        elif line.startswith("+"):
            added.append(line[1:])
        else:
            old_line += 1
    return first_removed, removed, added


def function_span(path: Path, cls: str | None, func: str) -> tuple[int, int] | None:
    tree = ast.parse(path.read_text())
    body = tree.body
    if cls is not None:
        owners = [n for n in body if isinstance(n, ast.ClassDef) and n.name == cls]
        if not owners:
            return None
        body = owners[0].body
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return start, node.end_lineno
    return None


def locate(name: str, diff: str, cwd: Path) -> tuple[str, int | None, str]:
    """file, line in the original source, and the mutation as `old` -> `new`."""
    path = source_file(module_of(name), cwd)
    rel_line, removed, added = changed_lines(diff)
    cls, func = function_of(name)
    line = None
    span = function_span(cwd / path, cls, func)
    if span and removed:
        lines = (cwd / path).read_text().splitlines()
        want = removed[0].strip()
        # the diff is of the function alone (it may start at a comment above it): take the matching
        # source line nearest to where the diff puts it
        guess = span[0] + (rel_line or 1) - 1
        hits = [i + 1 for i in range(span[0] - 1, span[1]) if lines[i].strip() == want]
        if hits:
            line = min(hits, key=lambda n: abs(n - guess))

    return str(path), line, compact(" ⏎ ".join(c.strip() for c in removed),
                                    " ⏎ ".join(c.strip() for c in added))


def compact(old: str, new: str, context: int = 16) -> str:
    """`old` → `new`, cut to the part that differs and a little context around it."""
    if not old or not new:
        return f"`{old or '(nothing)'}` → `{new or '(nothing)'}`"
    pre = 0
    while pre < min(len(old), len(new)) and old[pre] == new[pre]:
        pre += 1
    suf = 0
    while suf < min(len(old), len(new)) - pre and old[-1 - suf] == new[-1 - suf]:
        suf += 1
    start = pre - context
    start = 0 if start <= 8 else old.rfind(" ", 0, start) + 1  # whole words, no stub of a cut

    def cut(s: str) -> str:
        end = len(s) - suf + context
        if end >= len(s) - 8:
            end = len(s)
        elif s.find(" ", end) >= 0:
            end = s.find(" ", end)
        return ("…" if start else "") + s[start:end] + ("…" if end < len(s) else "")

    return f"`{cut(old)}` → `{cut(new)}`"


def tests_selection() -> list[str]:
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(cfg.get("pytest_add_cli_args_test_selection", []))


def read_equivalent() -> dict[str, str]:
    out = {}
    if EQUIVALENT.exists():
        for raw in EQUIVALENT.read_text().splitlines():
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            name, _, reason = raw.partition("\t")
            out[name.strip()] = reason.strip()
    return out


def read_timings(path: Path | None) -> dict[str, float]:
    out = {}
    if path and path.exists():
        for raw in path.read_text().splitlines():
            key, _, sec = raw.partition("\t")
            if sec:
                out[key] = float(sec)
    return out


def minutes(sec: float | None) -> str:
    return "" if sec is None else f"{sec / 60:.1f} min"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def collect(modules: list[str], mutmut: str, cwd: Path, timings: dict[str, float]) -> dict:
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=cwd, capture_output=True, text=True,
                         check=True)
    status = parse_results(res.stdout)
    if not status:
        sys.exit("mutation_report: `mutmut results` listed no mutants; has `mutmut run` been run here?")
    out = {}
    for mod in modules:
        dotted = mod.strip("/").replace("/", ".")
        names = sorted((n for n in status if module_of(n) == dotted or module_of(n).startswith(dotted + ".")),
                       key=mutant_key)
        counts = Counter(status[n] for n in names)
        survivors, untested = [], {}
        for n in names:
            if status[n] == "survived":
                diff = subprocess.run([mutmut, "show", n], cwd=cwd, capture_output=True, text=True,
                                      check=True).stdout
                path, line, mutation = locate(n, diff, cwd)
                survivors.append({"name": n, "file": path, "line": line, "mutation": mutation})
            elif status[n] == "no tests":
                cls, func = function_of(n)
                path = source_file(module_of(n), cwd)
                key = f"{path}::{cls + '.' if cls else ''}{func}"
                if key not in untested:
                    span = function_span(cwd / path, cls, func)
                    untested[key] = {"file": str(path), "function": key.partition("::")[2],
                                     "line": span[0] if span else None, "mutants": 0}
                untested[key]["mutants"] += 1
        out[mod] = {
            "generated": len(names),
            "killed": counts.get("killed", 0),
            "survived": counts.get("survived", 0),
            "no_tests": counts.get("no tests", 0),
            "timeout_suspicious": sum(counts.get(x, 0) for x in TIMEOUT_LIKE),
            "not_checked": counts.get("not checked", 0),
            "other": {k: v for k, v in counts.items()
                      if k not in KILLED | UNDETECTED | TIMEOUT_LIKE | {"not checked"}},
            "wall_s": timings.get(mod),
            "survivors": survivors,
            "untested_functions": sorted(untested.values(), key=lambda u: (u["file"], u["line"] or 0)),
        }
    return out


def write_markdown(data: dict, equivalent: dict[str, str]) -> str:
    mods = data["modules"]
    known = {s["name"] for m in mods.values() for s in m["survivors"]}
    lines = [
        "# Mutation testing",
        "",
        "Written by `bash bench/mutation.sh [MODULE...]` (bench/mutation_report.py, from mutation.json);",
        "do not edit by hand. Declare an equivalent survivor in `bench/mutation_equivalent.tsv`",
        "(`MUTANT_NAME<TAB>one-line reason`): the reason then shows in its row and the mutant leaves",
        "the denominator.",
        "",
        "score = killed / (generated − equivalent). *No tests*: mutants in functions that no selected",
        "test calls (not killed). *Timeout/susp.*: timeouts, suspicious exits and segfaults (not",
        "counted as killed). mutmut 3 mutates code inside functions and methods only: module-level",
        "constants, class attributes and dataclass fields are not mutated. Each mutant runs the",
        "selected tests that call its function (recorded in the setup step), fastest first, up to the",
        "first failure. *Mutant runs*: wall clock of `mutmut run \"<module>.*\"`, after the shared setup",
        "(see Runs).",
        "",
        "| module | generated | killed | survived | no tests | timeout/susp. | equivalent | score | "
        "mutant runs (wall) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for mod, m in sorted(mods.items()):
        eq = sum(1 for s in m["survivors"] if s["name"] in equivalent)
        denom = m["generated"] - eq
        score = f"{100 * m['killed'] / denom:.1f} %" if denom else "n/a"
        lines.append(f"| `{mod}` | {m['generated']} | {m['killed']} | {m['survived']} | {m['no_tests']} | "
                     f"{m['timeout_suspicious']} | {eq} | {score} | {minutes(m.get('wall_s'))} |")
        if m.get("not_checked"):
            notes.append(f"- `{mod}`: {m['not_checked']} mutants not checked (the run was stopped); "
                         "they count as not killed.")
        if m.get("other"):
            notes.append(f"- `{mod}`: other statuses: " + ", ".join(f"{k}: {v}" for k, v in m["other"].items()))
    lines += [""] + notes + ([""] if notes else [])
    runs = {}
    for mod, m in mods.items():
        runs.setdefault(json.dumps(m["run"], sort_keys=True), []).append(mod)
    lines += ["## Runs", ""]
    for key, ms in runs.items():
        run = json.loads(key)
        lines.append(
            f"- {', '.join(f'`{x}`' for x in sorted(ms))}: {run['date']}, commit `{run['commit']}`"
            f"{' + uncommitted changes to mbrl_ray/ or tests/' if run.get('dirty') else ''}, "
            f"mutmut {run['mutmut']}, {run['jobs']} workers on {run['host']}, nice {run.get('nice', '?')}. "
            f"Tests: `{run.get('tests', '?')}`. Shared setup (mutant generation and one run of those tests "
            f"recording which call which function): {minutes(run.get('setup_s')) or 'n/a'}; the whole "
            f"command: {minutes(run.get('total_s')) or 'n/a'}.")
    lines += ["", "## Survivors", "",
              "The tests that call the function pass with the mutant in place. `mutmut show MUTANT` from the",
              "repo root (with .venv-mutation, after a run) prints its diff.", ""]
    for mod, m in sorted(mods.items()):
        lines += [f"### `{mod}`", ""]
        if not m["survivors"]:
            lines += ["None.", ""]
        else:
            lines += ["| file:line | mutation | mutant | equivalent: reason |", "| --- | --- | --- | --- |"]
            for s in sorted(m["survivors"], key=lambda s: (s["file"], s["line"] or 0, mutant_key(s["name"]))):
                where = f"{s['file']}:{s['line'] if s['line'] is not None else '?'}"
                lines.append(f"| {where} | {cell(s['mutation'])} | `{s['name']}` | "
                             f"{cell(equivalent.get(s['name'], ''))} |")
            lines.append("")
        if m.get("untested_functions"):
            lines += ["Functions no selected test calls (their mutants are the *no tests* column):", "",
                      "| file:line | function | mutants |", "| --- | --- | ---: |"]
            for u in m["untested_functions"]:
                lines.append(f"| {u['file']}:{u['line'] or '?'} | `{u['function']}` | {u['mutants']} |")
            lines.append("")
    stale = sorted(set(equivalent) - known)
    if stale:
        lines += ["## Stale equivalence declarations", "",
                  "Named in bench/mutation_equivalent.tsv but not a survivor of the modules above (renumbered",
                  "after an edit to its function, killed now, or its module not run):", ""]
        lines += [f"- `{n}`" for n in stale] + [""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="+", required=True, help="e.g. mbrl_ray/replay")
    ap.add_argument("--timings", type=Path, help="TSV of KEY<TAB>seconds: a module, setup, total")
    ap.add_argument("--mutmut", default="mutmut", help="the mutmut executable")
    ap.add_argument("--cwd", type=Path, default=ROOT, help="directory holding mutants/")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "mutation.md")
    args = ap.parse_args()

    timings = read_timings(args.timings)
    version = subprocess.run([args.mutmut, "--version"], capture_output=True, text=True).stdout.strip()
    # The tree the mutants were generated from: mutation.sh records it before it starts (the tree
    # may move on during an hour-long run); a bare re-render reads the tree as it is now.
    commit = os.environ.get("MUTATION_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = os.environ["MUTATION_DIRTY"] == "1" if "MUTATION_DIRTY" in os.environ else bool(
        subprocess.run(["git", "status", "--porcelain", "--", "mbrl_ray", "tests"], cwd=ROOT,
                       capture_output=True, text=True).stdout.strip())
    run = {"date": dt.date.today().isoformat(), "commit": commit, "dirty": dirty,
           "mutmut": version.rpartition(" ")[2] or version, "jobs": args.jobs,
           "host": f"{os.cpu_count()} CPUs", "nice": os.environ.get("MUTATION_NICE", "19"),
           "tests": " ".join((os.environ.get("MUTATION_SELECTION", "").split() or tests_selection())
                          + os.environ.get("MUTATION_PYTEST_ADDOPTS", "").split()),
           "setup_s": timings.get("setup"), "total_s": timings.get("total")}

    json_path = args.out.with_suffix(".json")
    data = json.loads(json_path.read_text()) if json_path.exists() else {"modules": {}}
    for mod, m in collect(args.modules, args.mutmut, args.cwd, timings).items():
        m["run"] = run
        data["modules"][mod] = m
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    args.out.write_text(write_markdown(data, read_equivalent()))
    print(f"wrote {args.out} and {json_path.name}")


if __name__ == "__main__":
    main()
