"""One local Ray instance per test session, with its files kept in a temp dir of its own."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
warnings.filterwarnings("ignore", category=DeprecationWarning)


TIERS = ("unit", "ray", "slow", "gpu")  # pyproject.toml's tiers: each test carries one (and
# may carry `long`, over a minute: left out of the default run, run by CI after it)


def pytest_collection_modifyitems(items) -> None:
    """Refuse a test with no tier marker or several: `-m unit` must run every unit test and
    `-m ray` no slow one."""
    wrong = [f"{item.nodeid}: {tiers or 'none'}" for item in items
             if len(tiers := sorted({m.name for m in item.iter_markers()} & set(TIERS))) != 1]
    if wrong:
        raise pytest.UsageError("each test carries exactly one tier marker of "
                                f"{', '.join(TIERS)}:\n" + "\n".join(wrong))


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from mbrl_ray.distributed.loopback import listen_on_loopback_only

    temp_dir = tempfile.mkdtemp(prefix="mbrl-ray-")  # short path: Ray's socket names are limited
    listen_on_loopback_only()  # as a local run's Ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir,
             log_to_driver=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
