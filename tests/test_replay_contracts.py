"""What the replay promises besides its sampling rules (found by mutation testing, issue 39):
counters, links and dtypes of StreamStorage, a chunk longer than the ring, checkpoints of pixel
rows, the selectors' dispatch, defaults and output dtypes, episode boundaries when allowed,
the limiter's state and the bytes one row costs."""
import numpy as np
import pytest

from mbrl_ray.envs import EnvSpec
from mbrl_ray.replay import (BatchSpec, SamplesPerInsertLimiter, StreamStorage, empty_rows,
                             sample, sample_sequences, sample_transitions)
from mbrl_ray.replay.selectors import transitions_of, windows
from mbrl_ray.replay.storage import bytes_per_row, row_dtypes

pytestmark = pytest.mark.unit

SPEC = EnvSpec.state(2, 1)


def _rows(n: int, first: bool, start: float = 0.0, spec: EnvSpec = SPEC) -> dict:
    rows = empty_rows(spec, n)
    if spec.kind == "state":
        rows["obs"][:, 0] = start + np.arange(n)
    rows["reward"][:] = start + np.arange(n)
    rows["is_first"][0] = first
    return rows


def test_a_fresh_storage_holds_nothing_in_its_declared_dtypes():
    store = StreamStorage(5, SPEC)
    assert (store.written, store.steps_inserted, store.next_stream_id, store.size) == (0, 0, 0, 0)
    assert store.stream.dtype == np.int32 and (store.stream == -1).all()
    assert store.prev.dtype == np.int64 and (store.prev == -1).all()
    dtypes = {k: dt for k, (dt, _) in row_dtypes(SPEC).items()}
    assert dtypes["action"] == np.float32 and dtypes["reward"] == np.float32
    assert store.data["action"].dtype == np.float32 and store.data["reward"].dtype == np.float32


def test_counters_and_links_follow_the_streams():
    store = StreamStorage(100, SPEC)
    store.add(_rows(1, True), "a")          # serial 0: a's first row, alone
    store.add(_rows(3, True, 10), "b")      # serials 1-3
    store.add(_rows(2, False, 1), "a")      # serials 4-5 continue a (its tail is serial 0)
    assert (store.written, store.steps_inserted, store.next_stream_id) == (6, 4, 2)
    np.testing.assert_array_equal(store.prev_of(np.arange(6)), [-1, -1, 1, 2, 0, 4])
    with pytest.raises(ValueError, match="stream 'c' starts with a row that is not is_first"):
        store.add(_rows(2, False), "c")


def test_a_chunk_longer_than_the_ring_keeps_its_newest_rows():
    store = StreamStorage(4, SPEC)
    store.add(_rows(7, True), "a")
    assert store.written == 7 and store.size == 4 and store.oldest == 3
    got = store.gather(np.arange(3, 7))
    np.testing.assert_array_equal(got["reward"], [3, 4, 5, 6])
    np.testing.assert_array_equal(store.prev_of(np.arange(3, 7)), [-1, 3, 4, 5])  # 2 is gone


def test_pixel_rows_and_counters_survive_a_checkpoint(tmp_path):
    spec = EnvSpec((3, 4, 4), "uint8", 2)
    store = StreamStorage(10, spec)
    rows = _rows(6, True, spec=spec)
    rows["obs"][:] = np.arange(6, dtype=np.uint8)[:, None, None, None] * 40
    store.add(rows, ("w", 0))
    store.add(_rows(2, True, spec=spec), ("w", 1))
    store.save(tmp_path / "r.npz")
    back = StreamStorage.load(tmp_path / "r.npz")
    assert back.spec == spec and back.data["obs"].dtype == np.uint8
    assert (back.written, back.steps_inserted, back.next_stream_id) == (8, 6, 2)
    np.testing.assert_array_equal(back.data["obs"][:6], rows["obs"])


def test_transitions_are_each_rows_successor_in_float32():
    """Row 1 of a window holds the action taken in row 0, its reward and termination."""
    store = StreamStorage(50, SPEC)
    rows = _rows(20, True)
    rows["action"][:] = 0.1 * np.arange(20)[:, None]
    rows["is_last"][7] = rows["is_terminal"][7] = True
    store.add(rows, "a")
    got = transitions_of(store, np.array([[2, 3], [6, 7]]))
    assert got["reward"].dtype == np.float32 and set(got) == {"obs", "action", "reward",
                                                              "next_obs", "terminated"}
    np.testing.assert_array_equal(got["obs"][:, 0], [2, 6])
    np.testing.assert_array_equal(got["next_obs"][:, 0], [3, 7])
    np.testing.assert_array_equal(got["reward"], rows["reward"][[3, 7]])
    np.testing.assert_array_equal(got["action"], rows["action"][[3, 7]])
    np.testing.assert_array_equal(got["terminated"], [False, True])
    drawn = sample_transitions(store, 30, np.random.default_rng(1))
    assert not (drawn["obs"][:, 0] == 7).any()  # an episode's last row starts no transition


def _episodes_store() -> StreamStorage:
    """One stream of episodes of 4 rows (a first row and 3 steps)."""
    store = StreamStorage(200, SPEC)
    for e in range(20):
        rows = _rows(4, True, 4 * e)
        rows["is_last"][-1] = True
        store.add(rows, "s")
    return store


def test_sequences_cross_episode_starts_only_when_boundaries_are_allowed():
    store, rng = _episodes_store(), np.random.default_rng(0)
    inside = sample_sequences(store, 200, 3, rng)  # default: inside one episode
    assert not inside["is_first"][:, 1:].any()
    crossing = sample_sequences(store, 200, 3, rng, boundaries=True)
    assert crossing["is_first"][:, 1:].any()


def test_sample_dispatches_on_the_batch_spec():
    store, rng = _episodes_store(), np.random.default_rng(0)
    t = sample(store, BatchSpec("transitions", size=6), rng)
    assert t["obs"].shape == (6, 2) and (t["next_obs"][:, 0] == t["obs"][:, 0] + 1).all()
    s = sample(store, BatchSpec("sequences", size=50, length=3, boundaries=True), rng)
    assert s["obs"].shape == (50, 3, 2) and s["is_first"][:, 1:].any()
    with pytest.raises(ValueError, match="BatchSpec.kind='frames': transitions or sequences"):
        BatchSpec("frames")


def test_a_single_window_is_found():
    store = _episodes_store()
    assert windows(store, 1, 3, np.random.default_rng(0)).shape == (1, 3)


def test_limiter_state_round_trips():
    a = SamplesPerInsertLimiter(samples_per_insert=2.0, min_size=10, error_buffer=100)
    a.insert(50)
    a.sample(30)
    b = SamplesPerInsertLimiter(samples_per_insert=2.0, min_size=10, error_buffer=100)
    b.load_state_dict(a.state_dict())
    assert (b.inserts, b.samples, b.ratio) == (50, 30, a.ratio) == (50, 30, 0.75)


def test_bytes_per_row_counts_fields_stream_id_and_link():
    assert bytes_per_row(EnvSpec.state(2, 2)) == 2 * 4 + 2 * 4 + 4 + 3 + 4 + 8 == 35
    assert bytes_per_row(EnvSpec((3, 64, 64), "uint8", 6)) == 12_288 + 24 + 4 + 3 + 12
    store = StreamStorage(10, EnvSpec((3, 64, 64), "uint8", 6))
    assert store.nbytes == 10 * bytes_per_row(store.spec)


def test_the_transition_buffer_keeps_the_newest_rows_and_samples_all_it_holds():
    """MBPO's model rollouts: a FIFO ring; a chunk at least as long as the ring keeps its newest
    rows; samples come from every row held (row 0 included); an empty buffer says so."""
    from mbrl_ray.replay import TransitionBuffer, empty_transitions

    assert len(empty_transitions(2, 1)["reward"]) == 0
    buf = TransitionBuffer(4, 2, 1)
    with pytest.raises(ValueError, match="cannot sample from an empty transition buffer"):
        buf.sample(1, np.random.default_rng(0))
    chunk = empty_transitions(2, 1, 4)
    chunk["reward"][:] = [1, 2, 3, 4]
    buf.add(chunk)
    assert buf.size == 4 and buf.cursor == 0
    drawn = buf.sample(400, np.random.default_rng(0))["reward"]
    assert set(drawn.tolist()) == {1, 2, 3, 4}
    chunk = empty_transitions(2, 1, 6)
    chunk["reward"][:] = [5, 6, 7, 8, 9, 10]
    buf.add(chunk)
    assert sorted(buf.data["reward"].tolist()) == [7, 8, 9, 10] and buf.size == 4
    one = TransitionBuffer(3, 2, 1)
    one.add({k: v[:1] for k, v in chunk.items()})
    assert one.sample(5, np.random.default_rng(0))["reward"].tolist() == [5] * 5
