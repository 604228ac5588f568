#!/usr/bin/env bash
# Mutation testing of the library's core modules with mutmut, against the fast unit tier.
#
#   bash bench/mutation.sh [MODULE...]     MODULE: mbrl_ray/replay (or just replay); default: all six
#                                          of world_models planners critics agents replay nn
#                                          (nn: the shared layers, mbrl_ray/nn.py)
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
# Test selection: each module is scored against its own unit tests (TESTS below; a run of several
# modules uses the union), since tracing the whole unit tier for mutmut's stats took over 50 CPU-minutes
# on 2 cores. A mutant that only some other test would kill counts as survived: the score is a lower
# bound. MUTATION_TESTS="tests/" (or any pytest paths) replaces the selection.
#
# Environment: MUTATION_JOBS (workers, default: number of CPUs), MUTATION_NICE (default 19),
# MUTATION_BUDGET_MIN (stop the mutant runs once the whole command has taken this many minutes; the
# module running then is interrupted, its unchecked mutants reported as such, later ones skipped),
# MUTATION_PYTEST_ADDOPTS (extra pytest arguments for every test run: --deselect a test that fails on
# the tree, since mutmut needs the selected tests green, or -k test_replay to score a module against
# its own tests only), OMP_NUM_THREADS / MKL_NUM_THREADS (default 1: one core per worker).
set -euo pipefail
cd "$(dirname "$0")/.."

main() {
ALL=(mbrl_ray/world_models mbrl_ray/planners mbrl_ray/critics mbrl_ray/agents mbrl_ray/replay mbrl_ray/nn)
declare -A TESTS=(
  [mbrl_ray/planners]="tests/test_gps.py tests/test_pilco.py tests/test_planners.py tests/test_planner_math.py tests/test_planner_contracts.py tests/test_smcp_lst.py"
  [mbrl_ray/replay]="tests/test_replay.py tests/test_replay_contracts.py tests/test_mbpo_math.py"
  [mbrl_ray/critics]="tests/test_sac.py tests/test_sac_math.py tests/test_dcmpc.py tests/test_imagination.py tests/test_critic_contracts.py"
  [mbrl_ray/world_models]="tests/test_gps.py tests/test_pilco.py tests/test_sparse_gp.py tests/test_deterministic_model.py tests/test_ensemble.py tests/test_ensemble_math.py tests/test_ensemble_training.py tests/test_planning_ensemble_contracts.py tests/test_planning_onednn.py tests/test_world_model_contracts.py tests/test_rssm.py tests/test_dcmpc.py tests/test_smcp_lst.py"
  [mbrl_ray/nn]="tests/test_nn.py tests/test_dcmpc.py"
  [mbrl_ray/agents]="tests/test_agent_contract.py tests/test_gps.py tests/test_pilco.py tests/test_sparse_gp.py tests/test_mbmf.py tests/test_finetune.py tests/test_pets_agent.py tests/test_mbpo.py tests/test_mbpo_math.py tests/test_sac.py tests/test_dcmpc.py tests/test_imagination.py tests/test_rssm.py tests/test_smcp_lst.py tests/test_executed_actions.py"
)
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
# generates nor traces the other modules' mutants, and the test selection narrowed to theirs (pyproject.toml lists all six for `results`,
# `show` and `browse`). Pinned mutmut: config() is its cached Config dataclass.
selection=${MUTATION_TESTS:-$(for m in "${modules[@]}"; do echo "${TESTS[$m]}"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')}
export MUTATION_SELECTION="$selection -m unit"
JOBS=${MUTATION_JOBS:-$(nproc)}
NICE=${MUTATION_NICE:-19}
run_mutmut=(nice -n "$NICE" "$MV/bin/python" -c '
import sys
from mutmut.configuration import config
import os
config().only_mutate = [m + ".py" if os.path.isfile(m + ".py") else m + "/*" for m in sys.argv[1].split()]
config().pytest_add_cli_args_test_selection = sys.argv[2].split()
sys.argv = ["mutmut"] + sys.argv[3:]
from mutmut.__main__ import cli
cli()' "${modules[*]}" "$MUTATION_SELECTION" run --max-children "$JOBS")

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

# the tree the mutants come from, for the report (the working tree may move on during the run)
export MUTATION_COMMIT=$(git rev-parse --short HEAD)
export MUTATION_DIRTY=$([ -n "$(git status --porcelain -- mbrl_ray tests)" ] && echo 1 || echo 0)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_all=$(now)
rm -rf mutants

# setup: mutant generation and the stats run. A pattern that names no mutant makes mutmut stop right
# after saving the stats (an assertion "nothing matches"), which is what separates this step.
echo "== setup: generating mutants, recording which unit tests call which function (log: $LOGS/setup.log)"
t0=$(now)
rc=0
"${run_mutmut[@]}" "mbrl_ray.__setup_only__*" > "$LOGS/setup.log" 2>&1 || rc=$?
if [ ! -s mutants/mutmut-stats.json ] || ! grep -q "nothing matches" "$LOGS/setup.log"; then
  echo "setup failed (exit status $rc); the end of $LOGS/setup.log:" >&2
  tr '\r' '\n' < "$LOGS/setup.log" | grep -v 'Generating mutants\|Running stats' | tail -n 30 >&2; exit 1
fi
printf 'setup\t%s\n' "$(since "$t0")" >> "$timings"

ran=()
for m in "${modules[@]}"; do
  name=${m//\//.}
  log=$LOGS/${name#mbrl_ray.}.log
  limit=()
  if [ -n "${MUTATION_BUDGET_MIN:-}" ]; then
    left=$(awk -v a="$t_all" -v b="$(now)" -v m="$MUTATION_BUDGET_MIN" 'BEGIN { printf "%d", a + 60 * m - b }')
    if [ "$left" -le 30 ]; then echo "== $m: skipped, MUTATION_BUDGET_MIN=$MUTATION_BUDGET_MIN spent"; continue; fi
    limit=(timeout -s INT "$left")
  fi
  echo "== $m: mutmut run \"$name.*\" on $JOBS workers (log: $log)"
  t0=$(now)
  rc=0
  "${limit[@]}" "${run_mutmut[@]}" "$name.*" > "$log" 2>&1 || rc=$?
  dt=$(since "$t0")
  if [ "$rc" -eq 124 ]; then
    echo "   stopped at the budget after $(printf '%.0f' "$dt") s; unchecked mutants stay in the table as such"
  elif [ "$rc" -ne 0 ]; then
    echo "mutmut failed on $m (exit status $rc); the end of $log:" >&2; tail -n 40 "$log" >&2; exit 1
  else
    echo "   $(printf '%.0f' "$dt") s"
  fi
  printf '%s\t%s\n' "$m" "$dt" >> "$timings"
  ran+=("$m")
done
[ ${#ran[@]} -gt 0 ] || { echo "no module ran" >&2; exit 1; }
printf 'total\t%s\n' "$(since "$t_all")" >> "$timings"

"$MV/bin/python" bench/mutation_report.py --modules "${ran[@]}" --timings "$timings" \
  --mutmut "$MUTMUT" --jobs "$JOBS"
}

main "$@"; exit  # parsed whole before it runs, and the exit read with it: an edit during a run cannot derail it
