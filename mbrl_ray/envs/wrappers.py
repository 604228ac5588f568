"""The few wrappers that give every suite one contract: actions in [-1, 1], flat float32 or
uint8 CHW pixel observations, action repeat, frames. Each is a thin step, so the chain costs
~nothing next to a MuJoCo step (bench/env_bench.py measures it)."""
from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np

from mbrl_ray.envs.frames import Frames


class MujocoFrames(gym.Wrapper):
    """`render()` for Gymnasium MuJoCo envs (Meta-World's too) through `Frames`, from the view
    Gymnasium would use: a free camera on the scene, then the env's default camera config."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        self._frames = Frames(env.unwrapped.model, size)
        self._camera: mujoco.MjvCamera | None = None

    @property
    def render_mode(self) -> str:
        return "rgb_array"

    def render(self) -> np.ndarray:
        if self._camera is None:  # placed on the scene as it is after the first reset
            self._camera = self._default_camera()
        return self._frames.render(self.env.unwrapped.data, self._camera)

    def _default_camera(self) -> mujoco.MjvCamera:
        model, data = self.env.unwrapped.model, self.env.unwrapped.data
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = np.median(data.geom_xpos, axis=0)
        camera.distance = model.stat.extent
        renderer = getattr(self.env.unwrapped, "mujoco_renderer", None)
        for key, value in (getattr(renderer, "default_cam_config", None) or {}).items():
            if isinstance(value, np.ndarray):
                getattr(camera, key)[:] = value
            else:
                setattr(camera, key, value)
        return camera

    def close(self) -> None:
        self._frames.close()
        super().close()


class UnitContract(gym.Wrapper):
    """Actions in [-1, 1] mapped affinely onto the env's bounds, observations as flat float32:
    one thin layer, each half only where the env needs it. Gymnasium's RescaleAction plus an
    observation wrapper cost ~2.5 us a step, 10-15% of a cheap MuJoCo env's step; this costs
    ~1 us (bench/env_bench.py). Actions are not clipped here: the simulators clamp controls to
    their ranges (every model of these suites is ctrllimited; Meta-World clips itself)."""

    def __init__(self, env: gym.Env, flat_obs: bool = True) -> None:
        super().__init__(env)
        low = env.action_space.low.astype(np.float32)
        high = env.action_space.high.astype(np.float32)
        centre, half = (high + low) / 2, (high - low) / 2
        self._half = None if (half == 1).all() else half          # None: nothing to scale
        self._centre = None if (centre == 0).all() else centre    # None: symmetric bounds
        ones = np.ones_like(low)
        self.action_space = gym.spaces.Box(-ones, ones, dtype=np.float32)
        space = env.observation_space
        self._convert = flat_obs and not (space.dtype == np.float32 and len(space.shape) == 1)
        if flat_obs:
            self.observation_space = gym.spaces.Box(
                space.low.astype(np.float32).ravel(), space.high.astype(np.float32).ravel(),
                dtype=np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action):
        if self._half is not None:
            action = self._half * action
        if self._centre is not None:
            action = self._centre + action
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), reward, terminated, truncated, info

    def _obs(self, obs):
        return obs.astype(np.float32).ravel() if self._convert else obs


class PixelObs(gym.ObservationWrapper):
    """The rendered frame as the observation: uint8, channels first (3, size, size)."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (3, size, size), np.uint8)

    def observation(self, observation):
        return np.ascontiguousarray(self.env.render().transpose(2, 0, 1))


class ActionRepeat(gym.Wrapper):
    """Each action applied `repeat` times; rewards summed; stops early when the episode ends.
    `info['success']` is the max over the repeated steps, so a success is never skipped."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        total, success = 0.0, None
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += reward
            if "success" in info:
                success = max(success or 0.0, float(info["success"]))
            if terminated or truncated:
                break
        if success is not None:
            info = {**info, "success": success}
        return obs, total, terminated, truncated, info
