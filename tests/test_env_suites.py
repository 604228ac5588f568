"""Every suite behind make_env keeps one contract: spaces and dtypes, reset/step, seeding,
action repeat, truncation at the time limit, Meta-World's success flag, pixel frames."""
import gc
import subprocess
import sys

import numpy as np
import pytest

from mbrl_ray.config import ConfigError
from mbrl_ray.envs import check_env_spec, make_env
from mbrl_ray.envs.task_lists import DMC_TASKS, METAWORLD_TASKS

pytestmark = pytest.mark.unit

SPECS = ["HalfCheetah-v5", "Reacher-v5", "dmc:cheetah-run", "dmc:walker-walk",
         "metaworld:reach", "metaworld:door-open"]
# (spec, the suite's own episode length in its steps)
LIMITS = [("Reacher-v5", 50), ("dmc:cartpole-swingup", 1000), ("metaworld:reach", 500)]


def _actions(env, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def _observations(spec, seed, n=100):
    env = make_env(spec, seed=seed)
    out = [env.reset(seed=seed)[0]]
    out += [env.step(a)[0] for a in _actions(env, n - 1)]
    env.close()
    return np.stack(out)


@pytest.mark.parametrize("spec", SPECS)
def test_spaces_and_step_contract(spec):
    env = make_env(spec, seed=0)
    space = env.action_space
    assert space.dtype == np.float32 and (space.low == -1).all() and (space.high == 1).all()
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert obs.ndim == 1 and isinstance(info, dict)
    for action in _actions(env, 5):
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
        assert isinstance(reward, float) and np.isfinite(reward)
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
    env.close()


def test_unit_actions_map_onto_the_env_bounds():
    env = make_env("InvertedPendulum-v5", seed=0)  # native bounds [-3, 3]
    for unit, native in ((1.0, 3.0), (-0.5, -1.5), (0.0, 0.0)):
        env.step(np.array([unit], np.float32))
        assert env.unwrapped.data.ctrl[0] == pytest.approx(native)
    env.close()


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_first_100_observations(spec):
    first = _observations(spec, seed=3)
    np.testing.assert_array_equal(first, _observations(spec, seed=3))
    assert not np.array_equal(first, _observations(spec, seed=4))


@pytest.mark.parametrize("spec", ["HalfCheetah-v5", "dmc:cheetah-run", "metaworld:reach"])
def test_action_repeat_sums_rewards(spec):
    repeated = make_env(spec, seed=5, action_repeat=3)
    single = make_env(spec, seed=5)
    repeated.reset(seed=5)
    single.reset(seed=5)
    for action in _actions(single, 4):
        obs, reward, *_ = repeated.step(action)
        steps = [single.step(action) for _ in range(3)]
        assert reward == pytest.approx(sum(s[1] for s in steps), rel=1e-6)
        np.testing.assert_array_equal(obs, steps[-1][0])


@pytest.mark.parametrize("spec, limit", LIMITS)
@pytest.mark.parametrize("repeat", [1, 4])
def test_truncation_at_the_time_limit(spec, limit, repeat):
    env = make_env(spec, seed=0, action_repeat=repeat)
    for episode in range(2):  # the second one checks that reset after truncation works
        env.reset()
        steps, truncated = 0, False
        while not truncated:
            _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            assert not terminated
            steps += 1
        assert steps == -(-limit // repeat)
    env.close()


def test_max_episode_steps_overrides_each_suite():
    for spec in ("Reacher-v5", "dmc:cheetah-run", "metaworld:reach"):
        env = make_env(spec, seed=0, max_episode_steps=7)
        env.reset()
        flags = [env.step(np.zeros(env.action_space.shape, np.float32))[3] for _ in range(7)]
        assert flags == [False] * 6 + [True], spec
    with pytest.raises(ConfigError, match="env.max_episode_steps=600"):
        check_env_spec("metaworld:reach", max_episode_steps=600)


def test_metaworld_success_flag():
    from metaworld.policies import SawyerReachV3Policy

    env, policy = make_env("metaworld:reach", seed=0), SawyerReachV3Policy()
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(4, np.float32))
    assert info["success"] == 0.0
    successes = []
    for _ in range(200):  # the scripted policy reaches the goal well within 200 steps
        obs, _, _, _, info = env.step(policy.get_action(obs).astype(np.float32))
        successes.append(info["success"])
    assert max(successes) == 1.0
    env.close()


@pytest.mark.parametrize("spec", ["dummy", "InvertedPendulum-v5", "HalfCheetah-v5",
                                  "dmc:cheetah-run", "dmc:quadruped-run", "metaworld:door-open"])
def test_pixel_frames(spec):
    env = make_env(spec, seed=0, pixels=True, image_size=64)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (3, 64, 64) and env.observation_space.dtype == np.uint8
    assert obs.shape == (3, 64, 64) and obs.dtype == np.uint8
    assert obs.std() > 5, "blank frame"
    moved = [env.step(a)[0] for a in _actions(env, 20)][-1]
    assert moved.shape == (3, 64, 64) and not np.array_equal(moved, obs)
    env.close()


def test_frames_of_several_envs_in_one_process_stay_their_own():
    """Gymnasium's renderer draws into whichever GL context is current and dm_control frees a
    closed env's context twice; either way another env's frames went blank or wrong."""
    first = make_env("HalfCheetah-v5", seed=0, render_size=48)
    frame = first.render()
    others = [make_env(spec, seed=0, render_size=48) for spec in ("Reacher-v5", "dmc:cheetah-run")]
    for other in others:
        other.render()
    np.testing.assert_array_equal(first.render(), frame)
    others[1].close()
    del others
    gc.collect()
    np.testing.assert_array_equal(first.render(), frame)
    late = make_env("metaworld:reach", seed=0, render_size=48)
    assert late.render().std() > 5
    for env in (first, late):
        env.close()


@pytest.mark.parametrize("spec, words", [
    ("dmc:cheetah-rn", ["unknown dmc task 'cheetah-rn'", "dmc:cheetah-run"]),
    ("dmc:nothing-like-it", ["unknown dmc task", "allowed:", "walker-walk"]),
    ("metaworld:pick-plce", ["unknown metaworld task", "metaworld:pick-place"]),
    ("metaworld:door-open-v3", []),
    ("metaworld:peg-insert-side", []),
    ("dmc:dog-run", []),
    ("dmcc:walker-walk", ["unknown suite 'dmcc'", "did you mean dmc"]),
])
def test_spec_checks(spec, words):
    if not words:
        check_env_spec(spec)
        return
    with pytest.raises(ConfigError) as err:
        check_env_spec(spec)
    for word in words:
        assert word in str(err.value)


def test_headless_gl_backend_choice(monkeypatch):
    from mbrl_ray import gl

    libraries = {"EGL": None, "OSMesa": "libOSMesa.so.8"}
    monkeypatch.setattr(gl.ctypes.util, "find_library", libraries.get)
    assert gl.default_backend() == "osmesa"            # no EGL installed: the fallback
    libraries["EGL"] = "libEGL.so.1"
    assert gl.default_backend() == "egl"
    monkeypatch.setenv("MUJOCO_GL", "glfw")             # a user's own choice is kept
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert gl.configure() == "glfw" and "PYOPENGL_PLATFORM" not in __import__("os").environ


@pytest.mark.parametrize("backend", ["egl", "osmesa"])
def test_each_headless_backend_renders(backend):
    """Both backends work on this machine (setup installs their libraries): a frame in a fresh
    process, since MuJoCo reads MUJOCO_GL once, at import."""
    import os
    import subprocess
    import sys

    code = ("from mbrl_ray.envs import make_env; import os; "
            "e = make_env('dmc:cartpole-swingup', seed=0, pixels=True); o, _ = e.reset(); "
            "print(os.environ['MUJOCO_GL'], o.shape, float(o.std())); e.close()")
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == backend and float(out[-1]) > 5


def test_the_listed_task_names_are_the_installed_suites():
    """env.id is checked against task_lists.py (no simulator imported): the lists must be the
    suites' own."""
    import metaworld
    from dm_control import suite

    assert list(DMC_TASKS) == [f"{domain}-{task}" for domain, task in suite.ALL_TASKS]
    assert list(METAWORLD_TASKS) == sorted(name.removesuffix("-v3")
                                           for name in metaworld.ALL_V3_ENVIRONMENTS)


def test_an_env_id_is_checked_without_importing_a_simulator():
    """The CLI's check of env.id, in a fresh process: dm_control and Meta-World (seconds to
    import) and torch stay unimported, whether the id is refused or accepted."""
    code = ("import sys; from mbrl_ray.envs.specs import check_env_spec\n"
            "for spec in ('dmc:walker-walk', 'metaworld:reach', 'HalfCheetah-v5'):\n"
            "    check_env_spec(spec)\n"
            "try:\n    check_env_spec('dmc:walker-wlk')\nexcept Exception as err:\n"
            "    print(type(err).__name__)\n"
            "print(sorted({'dm_control', 'metaworld', 'torch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["ConfigError", "[]"]
