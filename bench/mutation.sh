#!/usr/bin/env bash
# Mutation testing of the library's core modules with mutmut, against the fast unit tier.
#
#   bash bench/mutation.sh [MODULE...]     MODULE: mbrl_ray/replay (or just replay); default: all five
#                                          of world_models planners critics agents replay
#
# Writes bench/results/mutation.md (and mutation.json, which keeps the rows of modules not run this
# time). Runs from a fresh clone: calls scripts/setup.sh, then puts mutmut (pinned in
# bench/mutation-requirements.txt) into .venv-mutation, a venv of its own that sees .venv's packages
# through a .pth file, so .venv and the dev extra are untouched. Configuration: [tool.mutmut] in
# pyproject.toml. Every run starts from an empty mutants/ (mutmut's cache would keep verdicts across
# edits to the tests). Steps, each timed:
#   setup:    generate the mutants of the modules asked for into mutants/ and run the test selection
#             (the unit tier) once with every call into them recorded (mutmut's "stats"), so that
#             each mutant later runs only the tests that call its function, fastest first, stopping
#             at the first failure;
#   a module: `mutmut run "mbrl_ray.replay.*"`, its mutants on MUTATION_JOBS workers.
# mutants/ is left in place: `.venv-mutation/bin/mutmut browse` (or `show NAME`) from the repo root.
# Logs and timings: bench/out/mutation/.
#
# Environment: MUTATION_JOBS (workers, default: number of CPUs), MUTATION_NICE (default 19),
# MUTATION_PYTEST_ADDOPTS (extra pytest arguments for every test run: --deselect a test that fails on
# the tree, since mutmut needs the selected tests green, or -k test_replay to score a module against
# its own tests only), OMP_NUM_THREADS / MKL_NUM_THREADS (default 1: one core per worker).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(mbrl_ray/world_models mbrl_ray/planners mbrl_ray/critics mbrl_ray/agents mbrl_ray/replay)
modules=()
for m in "${@:-${ALL[@]}}"; do
  m=${m%/}; [[ $m == mbrl_ray/* ]] || m=mbrl_ray/$m
  if [[ ! " ${ALL[*]} " == *" $m "* ]]; then
    echo "unknown module $m; one of: ${ALL[*]}" >&2; exit 2
  fi
  modules+=("$m")
done

bash scripts/setup.sh

# mutmut in its own venv, on top of .venv (the mutants are imported and tested in .venv's world)
MV=.venv-mutation
stamp=$MV/.installed
want=$(cat bench/mutation-requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$MV"
  "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$MV"
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  msite=$("$MV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "import site; site.addsitedir('$(realpath "$site")')" > "$msite/zz_project_venv.pth"
  # pip comes from .venv through that .pth and installs into $MV
  "$MV/bin/python" -m pip install -q -c constraints.txt -r bench/mutation-requirements.txt
  echo "$want" > "$stamp"
fi
MUTMUT=$(realpath "$MV/bin/mutmut")
# `mutmut run` with only_mutate narrowed to the modules asked for, so that a one-module run neither
# generates nor traces the other modules' mutants (pyproject.toml lists all five for `results`,
# `show` and `browse`). Pinned mutmut: config() is its cached Config dataclass.
run_mutmut() {
  nice -n "$NICE" "$MV/bin/python" -c '
import sys
from mutmut.configuration import config
config().only_mutate = [m + "/*" for m in sys.argv[1].split()]
sys.argv = ["mutmut"] + sys.argv[2:]
from mutmut.__main__ import cli
cli()' "${modules[*]}" run --max-children "$JOBS" "$@"
}

JOBS=${MUTATION_JOBS:-$(nproc)}
NICE=${MUTATION_NICE:-19}
export MUTATION_NICE=$NICE
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} ${MUTATION_PYTEST_ADDOPTS:-}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONIOENCODING=utf-8
LOGS=bench/out/mutation
mkdir -p "$LOGS"
timings=$LOGS/timings.tsv
: > "$timings"
if [ -d bench/out ] && [ "$(du -sm bench/out | cut -f1)" -gt 100 ]; then
  echo "note: bench/out is $(du -sh bench/out | cut -f1); mutmut copies bench/ (also_copy) into mutants/" >&2
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_all=$(now)
rm -rf mutants

# setup: mutant generation and the stats run. A pattern that names no mutant makes mutmut stop right
# after saving the stats (an assertion "nothing matches"), which is what separates this step.
echo "== setup: generating mutants, recording which unit tests call which function (log: $LOGS/setup.log)"
t0=$(now)
run_mutmut "mbrl_ray.__setup_only__*" > "$LOGS/setup.log" 2>&1 || true
if [ ! -s mutants/mutmut-stats.json ] || ! grep -q "nothing matches" "$LOGS/setup.log"; then
  echo "setup failed; the end of $LOGS/setup.log:" >&2; tail -n 40 "$LOGS/setup.log" >&2; exit 1
fi
printf 'setup\t%s\n' "$(since "$t0")" >> "$timings"

for m in "${modules[@]}"; do
  name=${m//\//.}
  log=$LOGS/${name#mbrl_ray.}.log
  echo "== $m: mutmut run \"$name.*\" on $JOBS workers (log: $log)"
  t0=$(now)
  if ! run_mutmut "$name.*" > "$log" 2>&1; then
    echo "mutmut failed on $m; the end of $log:" >&2; tail -n 40 "$log" >&2; exit 1
  fi
  dt=$(since "$t0")
  printf '%s\t%s\n' "$m" "$dt" >> "$timings"
  echo "   $(printf '%.0f' "$dt") s"
done
printf 'total\t%s\n' "$(since "$t_all")" >> "$timings"

"$MV/bin/python" bench/mutation_report.py --modules "${modules[@]}" --timings "$timings" \
  --mutmut "$MUTMUT" --jobs "$JOBS"
