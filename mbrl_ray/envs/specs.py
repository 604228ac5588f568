"""Env spec strings: a Gymnasium id, `dmc:<domain>-<task>`, `metaworld:<task>` or `dummy`.

`check_env_spec` builds nothing; its errors list the close matches, so a typo is one glance away."""
from __future__ import annotations

import difflib
import importlib.util

import gymnasium as gym

from mbrl_ray.config.loading import ConfigError
from mbrl_ray.envs import cartpole_swingup
from mbrl_ray.envs.task_lists import DMC_TASKS, METAWORLD_TASKS

cartpole_swingup.register()  # our own Gymnasium ids, before any check of env.id

DUMMY = "dummy"
# suite -> (optional extra that installs it, module it imports)
SUITES = {"dmc": ("dmc", "dm_control"), "metaworld": ("metaworld", "metaworld")}
METAWORLD_VERSION = "-v3"
METAWORLD_MAX_STEPS = 500  # Meta-World raises when stepped past its max_path_length


def split_spec(spec: str) -> tuple[str | None, str]:
    """('dmc', 'cheetah-run') for 'dmc:cheetah-run'; (None, spec) for Gymnasium ids and dummy."""
    if ":" in spec:
        suite, task = spec.split(":", 1)
        return suite, task
    return None, spec


def dmc_tasks() -> list[str]:
    """Every dm_control suite task as '<domain>-<task>' (listed here: no import of the suite)."""
    return list(DMC_TASKS)


def metaworld_tasks() -> list[str]:
    """Every Meta-World v3 task name, without the '-v3' suffix (no import of Meta-World)."""
    return list(METAWORLD_TASKS)


def metaworld_name(task: str) -> str:
    """'door-open' and 'door-open-v3' both name Meta-World's 'door-open-v3'."""
    return task if task.endswith(METAWORLD_VERSION) else task + METAWORLD_VERSION


def check_env_spec(spec: str, max_episode_steps: int = 0) -> None:
    """Raise ConfigError (key env.id) if `spec` cannot be built here; builds nothing."""
    suite, task = split_spec(spec)
    if suite is None:
        if spec != DUMMY and spec not in gym.registry:
            raise ConfigError(f"env.id={spec!r} is not a registered Gymnasium id, "
                              f"'dmc:<domain>-<task>', 'metaworld:<task>' nor 'dummy'"
                              + _close(spec, list(gym.registry)))
        return
    if suite not in SUITES:
        raise ConfigError(f"env.id={spec!r}: unknown suite {suite!r}; allowed: "
                          f"{', '.join(SUITES)} or a Gymnasium id" + _close(suite, list(SUITES)))
    extra, module = SUITES[suite]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"env.id={spec!r} needs the optional extra '{extra}': "
                          f"pip install -c constraints.txt 'mbrl-ray[{extra}]'")
    tasks = dmc_tasks() if suite == "dmc" else metaworld_tasks()
    name = task if suite == "dmc" else task.removesuffix(METAWORLD_VERSION)
    if name not in tasks:
        raise ConfigError(f"env.id={spec!r}: unknown {suite} task {task!r}"
                          + (_close(name, tasks, prefix=f"{suite}:")
                             or f"; allowed: {', '.join(tasks)}"))
    if suite == "metaworld" and max_episode_steps > METAWORLD_MAX_STEPS:
        raise ConfigError(f"env.max_episode_steps={max_episode_steps} exceeds Meta-World's "
                          f"episode length {METAWORLD_MAX_STEPS}; allowed: 0 (keep it) to "
                          f"{METAWORLD_MAX_STEPS}")


def _close(word: str, options: list[str], prefix: str = "") -> str:
    near = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(prefix + n for n in near)}?)" if near else ""
