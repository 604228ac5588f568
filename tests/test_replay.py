import numpy as np
import pytest

from mbrl_ray.replay import ReplayBuffer, SamplesPerInsertLimiter, empty_chunk

pytestmark = pytest.mark.unit


def _chunk(start: int, n: int, obs_dim=3, act_dim=2):
    c = empty_chunk(obs_dim, act_dim, n)
    c["reward"][:] = np.arange(start, start + n)
    c["obs"][:] = c["reward"][:, None]
    c["episode_end"][-1] = True
    return c


def test_add_sample_and_order():
    buf = ReplayBuffer(10, 3, 2)
    buf.add(_chunk(0, 4))
    assert buf.size == 4
    np.testing.assert_array_equal(buf.all()["reward"], [0, 1, 2, 3])
    batch = buf.sample(100, np.random.default_rng(0))
    assert batch["obs"].shape == (100, 3) and set(batch["reward"]) <= {0, 1, 2, 3}


def test_wrap_around_keeps_newest_oldest_first():
    buf = ReplayBuffer(5, 3, 2)
    buf.add(_chunk(0, 4))
    buf.add(_chunk(4, 3))
    assert buf.size == 5 and buf.total_inserted == 7
    np.testing.assert_array_equal(buf.all()["reward"], [2, 3, 4, 5, 6])
    buf.add(_chunk(7, 12))  # larger than capacity
    np.testing.assert_array_equal(buf.all()["reward"], [14, 15, 16, 17, 18])
    assert buf.total_inserted == 19


def test_save_load_round_trip(tmp_path):
    buf = ReplayBuffer(6, 3, 2)
    buf.add(_chunk(0, 5))
    buf.add(_chunk(5, 3))
    buf.save(tmp_path / "r.npz")
    back = ReplayBuffer.load(tmp_path / "r.npz")
    assert back.capacity == 6 and back.total_inserted == 8
    for key, value in buf.all().items():
        np.testing.assert_array_equal(back.all()[key], value)


def test_memory_close_to_raw_arrays():
    buf = ReplayBuffer(100_000, 17, 6)
    raw = 100_000 * (4 * (17 + 6 + 1 + 17) + 2)
    assert buf.nbytes <= 1.2 * raw


def test_limiter_holds_ratio():
    lim = SamplesPerInsertLimiter(samples_per_insert=4, min_size=10, error_buffer=20)
    assert not lim.can_sample(1)          # warm-up
    lim.insert(10)
    assert lim.can_insert()
    assert lim.can_sample(20) and not lim.can_sample(21)
    inserted, sampled = 10, 0
    for _ in range(2000):                 # greedy sampler and inserter
        if lim.can_sample(8):
            lim.sample(8)
            sampled += 8
        elif lim.can_insert():
            lim.insert(1)
            inserted += 1
    assert abs(sampled - 4 * (inserted - 10)) <= 20 + 8
    assert 3.5 < lim.ratio < 4.5
