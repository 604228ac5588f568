"""The two schedules over the same actors. Each is a loop that collects, trains and hands every
finished round to the driver (`driver.after_round`), which evaluates, logs and checkpoints."""
from __future__ import annotations

import time

import ray


def run_sync(driver) -> None:
    """PETS's loop: collect a round on all workers, train the agent on all data, broadcast."""
    t, topo, counters = driver.cfg.train, driver.topo, driver.counters
    while counters["env_steps"] < t.steps:
        first = counters["env_steps"] < t.random_steps
        round_steps = min(t.random_steps if first else t.steps_per_round,
                          t.steps - counters["env_steps"])
        per_worker = -(-round_steps // len(topo.workers))
        t0 = time.perf_counter()
        results = driver.collect_all(per_worker)
        driver.log_collect(results, time.perf_counter() - t0)
        driver.log_learner(driver.learner_result(lambda learner: learner.fit.remote()))
        driver.after_round(checkpoint_now=True)


def run_async(driver) -> None:
    """Free-running workers and learner; the replay limiter holds samples per insert. A due
    checkpoint waits until the learner finishes its round, so that the learner and the replay
    are saved at the same insert count."""
    t, topo = driver.cfg.train, driver.topo
    chunk = max(1, t.steps_per_round // len(topo.workers))
    inflight = {w.collect.remote(chunk): (w, 0) for w in topo.workers}
    learner_ref = topo.learner.train.remote(t.updates_per_round)
    submitted = driver.counters["env_steps"] + chunk * len(topo.workers)
    t0 = time.perf_counter()
    while inflight:
        ready, _ = ray.wait(list(inflight) + [learner_ref], num_returns=1)
        ref = ready[0]
        if ref == learner_ref:
            try:
                driver.log_learner(ray.get(ref))
            except ray.exceptions.RayActorError as err:
                driver.restart_learner(err)  # its round is lost; the replay still holds it all
            driver.evals.poll(learner_idle=True)  # one held for these weights starts now
            if driver.checkpoint_due:
                driver.checkpoint(pause_inserts=True)
            learner_ref = topo.learner.train.remote(t.updates_per_round)
            continue
        worker, tries = inflight.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as err:
            driver.on_worker_error(err, tries)
            inflight[worker.collect.remote(chunk)] = (worker, tries + 1)
            continue
        driver.log_collect([result], time.perf_counter() - t0)
        t0 = time.perf_counter()
        driver.after_round(checkpoint_now=False)
        if submitted < t.steps:
            inflight[worker.collect.remote(chunk)] = (worker, 0)
            submitted += chunk
    ray.get(topo.replay.release_limiter.remote())  # let the learner's last call finish
    driver.flush_workers()  # the last chunks are in before the final checkpoint
    try:
        driver.log_learner(ray.get(learner_ref))
    except ray.exceptions.RayActorError as err:
        driver.restart_learner(err)  # the final checkpoint saves the restarted learner
