"""Stream storage and its selectors: windows stay in one stream and behind the write head,
transitions are the env's, n-step targets over sampled sequences match a walk through each
episode, checkpoints are exact."""
import numpy as np
import pytest
import torch

from mbrl_ray.critics.nstep import nstep_target_parts
from mbrl_ray.envs import EnvSpec
from mbrl_ray.replay import (BatchSpec, SamplesPerInsertLimiter, StreamStorage,
                             all_transitions, empty_rows, sample, sample_sequences,
                             sample_transitions)

pytestmark = pytest.mark.unit

SPEC = EnvSpec.state(3, 1)  # obs = (stream uid, episode, time in episode)


class FakeStream:
    """Rows of one env of one worker incarnation: obs encode (uid, episode, t); episodes end
    at random, terminated or truncated; the action leading to a row is its t."""

    def __init__(self, uid: int, rng: np.random.Generator) -> None:
        self.uid, self.rng, self.episode, self.t = uid, rng, 0, 0
        self.first_due = True

    def rows(self, n: int) -> dict[str, np.ndarray]:
        out = empty_rows(SPEC, 2 * n + 1)
        k = 0
        for _ in range(n):
            if self.first_due:
                out["obs"][k], out["is_first"][k] = (self.uid, self.episode, 0), True
                k, self.first_due = k + 1, False
            self.t += 1
            end = self.rng.random() < 0.15
            out["obs"][k] = (self.uid, self.episode, self.t)
            out["action"][k], out["reward"][k] = self.t, self.t
            out["is_last"][k] = end
            out["is_terminal"][k] = end and self.rng.random() < 0.5
            k += 1
            if end:
                self.episode, self.t, self.first_due = self.episode + 1, 0, True
        return {key: v[:k] for key, v in out.items()}


def _fill(store: StreamStorage, seed: int, workers: int = 3, envs: int = 2, chunks: int = 40):
    """Random interleaving of several workers' chunks; a worker restarts now and then (its
    envs start new streams: a new uid and a first row)."""
    rng = np.random.default_rng(seed)
    uid = 0
    streams = {}
    for w in range(workers):
        for e in range(envs):
            streams[(w, e)] = (uid, FakeStream(uid, rng))
            uid += 1
    for _ in range(chunks):
        w = int(rng.integers(workers))
        if rng.random() < 0.1:  # restart: new incarnation, new streams
            for e in range(envs):
                streams[(w, e)] = (uid, FakeStream(uid, rng))
                uid += 1
        n = int(rng.integers(1, 12))
        for e in range(envs):
            key, stream = streams[(w, e)]
            store.add(stream.rows(n), ("w", key))
    return store


def _check_consecutive(obs: np.ndarray, is_first: np.ndarray, boundaries: bool) -> None:
    """Rows of each sequence follow each other in one stream: same uid, and t+1 in the same
    episode or t=0 of the next one (a first row)."""
    uid, ep, t = obs[..., 0], obs[..., 1], obs[..., 2]
    assert (uid[:, 1:] == uid[:, :1]).all()
    same = (ep[:, 1:] == ep[:, :-1]) & (t[:, 1:] == t[:, :-1] + 1) & ~is_first[:, 1:]
    next_ep = (ep[:, 1:] == ep[:, :-1] + 1) & (t[:, 1:] == 0) & is_first[:, 1:]
    assert (same | (next_ep if boundaries else False)).all()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("capacity", [60, 100_000])
def test_sequences_never_cross_a_stream_or_the_write_head(seed, capacity):
    store = _fill(StreamStorage(capacity, SPEC), seed)
    rng = np.random.default_rng(seed)
    for boundaries in (False, True):
        length = 3 if capacity == 60 else 6
        seq = sample_sequences(store, 64, length, rng, boundaries)
        assert seq["obs"].shape == (64, length, 3)
        _check_consecutive(seq["obs"], seq["is_first"], boundaries)
        if not boundaries:
            assert not seq["is_first"][:, 1:].any()


@pytest.mark.parametrize("seed", range(6))
def test_transitions_follow_their_stream_after_wrap_around(seed):
    store = _fill(StreamStorage(50, SPEC), seed, chunks=60)
    batch = sample_transitions(store, 500, np.random.default_rng(seed))
    o, n = batch["obs"], batch["next_obs"]
    assert (o[:, 0] == n[:, 0]).all() and (o[:, 1] == n[:, 1]).all()
    np.testing.assert_array_equal(n[:, 2], o[:, 2] + 1)
    np.testing.assert_array_equal(batch["action"][:, 0], n[:, 2])  # the action that led there
    every = all_transitions(store)
    np.testing.assert_array_equal(every["next_obs"][:, 2], every["obs"][:, 2] + 1)
    assert len(every["obs"]) <= store.size


def test_derived_next_observations_are_the_envs_with_the_truncated_final_one():
    """Rows written by the rollout worker's EnvBatch: each transition's next_obs is exactly
    what env.step returned, also at a time limit, where the reset obs follows in the stream."""
    from mbrl_ray.config.schema import EnvConfig
    from mbrl_ray.envs.batch import EnvBatch, StreamRows
    from mbrl_ray.envs import make_env

    cfg = EnvConfig(id="dummy", max_episode_steps=7)
    batch = EnvBatch(cfg, 2, seed=3)
    rows = StreamRows(EnvSpec.from_env(batch.envs[0]), 2, 20)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 2, 2)).astype(np.float32)
    for a in actions:
        batch.step(a, rows)
    store = StreamStorage(1000, EnvSpec.from_env(batch.envs[0]))
    for key, seg in rows.segments([("w", 0), ("w", 1)]):
        store.add(seg, key)
    got = all_transitions(store)
    assert len(got["obs"]) == 40  # every step: 20 per env, episodes of 7 truncated
    env = make_env("dummy", 3, max_episode_steps=7)  # env 0 of the batch, replayed
    obs, _ = env.reset(seed=3)
    for t in range(20):
        nxt, reward, term, trunc, _ = env.step(actions[t, 0])
        # env 0's segment was added first: its transitions are the first 20
        np.testing.assert_allclose(got["obs"][t], obs)
        np.testing.assert_allclose(got["next_obs"][t], nxt)
        assert got["reward"][t] == np.float32(reward) and got["terminated"][t] == term
        obs = env.reset()[0] if term or trunc else nxt


def test_save_load_gives_identical_samples(tmp_path):
    store = _fill(StreamStorage(80, SPEC), 7, chunks=50)  # wrapped
    store.save(tmp_path / "r.npz")
    back = StreamStorage.load(tmp_path / "r.npz")
    assert (back.written, back.steps_inserted, back.capacity) == (store.written,
                                                                 store.steps_inserted, 80)
    for spec in (BatchSpec("transitions", 64),
                 BatchSpec("sequences", 8, length=4, boundaries=True)):
        a = sample(store, spec, np.random.default_rng(1))
        b = sample(back, spec, np.random.default_rng(1))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_a_resumed_stream_key_starts_a_new_stream(tmp_path):
    store = _fill(StreamStorage(1000, SPEC), 2)
    store.save(tmp_path / "r.npz")
    back = StreamStorage.load(tmp_path / "r.npz")
    with pytest.raises(ValueError, match="is_first"):
        back.add({k: v[:1] for k, v in empty_rows(SPEC, 1).items()}, ("w", 0))


def test_pixel_rows_are_stored_once_as_uint8():
    spec = EnvSpec((3, 64, 64), "uint8", 6)
    store = StreamStorage(1000, spec)
    assert store.data["obs"].dtype == np.uint8
    assert store.nbytes / 1000 <= 12_500  # the frame (12,288 bytes) plus ~60 bytes of row


def test_too_few_windows_raise_a_clear_error():
    store = StreamStorage(100, SPEC)
    store.add(FakeStream(0, np.random.default_rng(0)).rows(3), "s")
    with pytest.raises(ValueError, match="too few windows of 50 rows"):
        sample_sequences(store, 4, 50, np.random.default_rng(0))


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


def test_limiter_due_counts_the_ratio_after_warm_up_plus_the_owed_samples():
    """What evaluation's wait for the learner measures against (train.eval_max_lag): spi x
    rows after the warm-up, plus the owed pre-training samples; nothing before warm-up."""
    lim = SamplesPerInsertLimiter(samples_per_insert=4, min_size=10, error_buffer=8, owed=100)
    lim.insert(9)
    assert lim.due == 0.0
    lim.insert(1)
    assert lim.due == 100.0
    lim.insert(7)
    lim.sample(50)  # samples drawn do not move it
    assert lim.due == 128.0


def test_limiter_grants_the_owed_pretraining_samples_while_inserts_wait():
    """owed = 100 samples: once the 10 warm-up rows are in, the learner may draw 100 (+ the
    error buffer) at once, and inserts wait until it has drawn all but the buffer."""
    lim = SamplesPerInsertLimiter(samples_per_insert=4, min_size=10, error_buffer=8, owed=100)
    assert not lim.can_sample(1)
    lim.insert(10)
    assert lim.can_sample(108) and not lim.can_sample(109)
    assert not lim.can_insert()
    lim.sample(91)
    assert not lim.can_insert()
    lim.sample(1)
    assert lim.can_insert()  # 92 = 100 - 8 drawn
    inserted, sampled = 10, 92
    for _ in range(2000):  # then the ratio holds as without a debt
        if lim.can_sample(4):
            lim.sample(4)
            sampled += 4
        elif lim.can_insert():
            lim.insert(1)
            inserted += 1
    assert abs(sampled - 100 - 4 * (inserted - 10)) <= 8 + 4


@pytest.mark.parametrize("nstep", [2, 4])
def test_nstep_targets_of_sampled_sequences_match_a_walk_through_each_episode(nstep):
    """DC-MPC's n-step targets on sequences as its learner samples them (n+1 rows, crossing
    episode boundaries), on streams whose episodes end terminated or truncated (time limit) at
    random, after wrap-around: recomputed here by walking each start's episode row by row.
    reward = sum_{k<steps} gamma^k r_{t+1+k}, steps = n or up to the episode's last row;
    next_obs the row reached; discount gamma^steps, 0 only at a termination (a truncated end
    keeps its bootstrap); a sequence whose row 0 ends its episode has no transition."""
    g = 0.7
    store = _fill(StreamStorage(400, SPEC), seed=nstep, chunks=60)
    held = store.gather(np.arange(store.oldest, store.written))
    ends = {tuple(o): (bool(last), bool(term)) for o, last, term
            in zip(held["obs"].astype(int), held["is_last"], held["is_terminal"])}
    seqs = sample_sequences(store, 600, nstep + 1, np.random.default_rng(nstep), boundaries=True)
    target = nstep_target_parts({k: torch.as_tensor(v) for k, v in seqs.items()}, nstep, g)
    kinds = set()
    for i, obs in enumerate(seqs["obs"][:, 0].astype(int)):
        uid, ep, t0 = obs
        if ends.get((uid, ep, t0), (False, False))[0]:  # row 0 ends its episode
            assert not target["valid"][i]
            kinds.add("none")
            continue
        assert target["valid"][i]
        want, steps, terminal = 0.0, 0, False
        for k in range(1, nstep + 1):
            want += g ** (k - 1) * (t0 + k)  # the FakeStream's reward of row t is t
            steps = k
            last, terminal = ends[(uid, ep, t0 + k)]
            if last:
                break
        kinds.add("terminal" if terminal else "truncated" if last else "full")
        reward, disc = float(target["reward"][i]), float(target["discount"][i])
        assert abs(reward - want) <= 1e-5 * max(1.0, want), (obs, reward, want)
        assert tuple(target["next_obs"][i].int().tolist()) == (uid, ep, t0 + steps)
        assert abs(disc - (0.0 if terminal else g ** steps)) < 1e-6
    assert kinds == {"terminal", "truncated", "full", "none"}, kinds
