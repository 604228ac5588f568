"""Headless OpenGL for MuJoCo rendering, chosen before anything imports mujoco.

MuJoCo and PyOpenGL read MUJOCO_GL / PYOPENGL_PLATFORM once, at import. EGL renders with the GPU
driver on a GPU node and with Mesa's software rasteriser (llvmpipe) elsewhere; OSMesa is the
fallback where no EGL library is installed. A user's own MUJOCO_GL (e.g. glfw with a display)
is kept."""
from __future__ import annotations

import ctypes.util
import os

HEADLESS = ("egl", "osmesa")


def default_backend() -> str:
    """'egl' when libEGL is installed, else 'osmesa' when libOSMesa is, else 'egl' (whose
    import error then says what is missing)."""
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return "egl"


def configure() -> str:
    """Set MUJOCO_GL (and PyOpenGL's platform to match) unless the user chose; return it."""
    backend = os.environ.setdefault("MUJOCO_GL", default_backend())
    if backend in HEADLESS:
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend
