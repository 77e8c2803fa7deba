"""Jobs on a Ray cluster: one long-lived actor per GPU (or per N CPUs), several jobs at once.

Imported only for ``emogene serve --runner ray`` (needs the ``ray`` extra). The
ZeroMQ front, request validation and the job store stay in the serving process;
each actor builds the stage set once (models and subjects stay loaded) and runs
one job at a time. A job's messages stream back through a Ray streaming
generator as the stages produce them (plates already PNG-encoded on the actor)
and the front records them exactly as the in-process runner does, so ``fetch``
after a reconnect or a restart of the front works unchanged.

Faults: when an actor or its node dies mid-job, the job goes back to the head of
the queue and runs again from the start on a fresh actor (Ray places it on any
node with room), after a stored warning; what the client already received stays
valid (same request, same seed: the re-run sends the same frames again). After
``max_retries`` such deaths the job fails with an error naming the cause.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError

from backend.runners.base import JobRecorder, RunnerStatus, describe, take_queued

if TYPE_CHECKING:
    from backend.server.worker import Job

log = logging.getLogger(__name__)


@dataclass
class RayRunnerConfig:
    """Where the cluster is and how jobs are spread over it."""
    #: None: a running cluster on this machine if there is one, else a new local one;
    #: "auto": a running cluster (error if none); "local": always a new local one; "HOST:PORT": that head
    address: str | None = None
    workers: int | None = None            # actors (= jobs at once); None: one per GPU, else CPUs // cpus_per_worker
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0
    device: str = "auto"                  # torch device on the actor ("auto": its GPU when it has one)
    subjects_dirs: list[str] | None = None   # extra subject folders (the same paths on every node)
    max_retries: int = 1                  # re-runs of a job whose actor died
    stream_backlog: int = 64              # messages an actor may run ahead of the front (bounds object store use)
    object_store_memory: int | None = None   # bytes, for a local cluster started here
    local_cpus: int | None = None            # CPUs of a local cluster started here (None: all)
    stage_set_factory: Callable[[Any, Any], Any] | None = None   # (device, subjects) -> StageSet; picklable


def connect(config: RayRunnerConfig) -> bool:
    """Join (or start) the cluster; True when this process started it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                               "log_to_driver": False}
    address = config.address
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":
        if config.object_store_memory:
            options["object_store_memory"] = int(config.object_store_memory)
        if config.local_cpus is not None:
            options["num_cpus"] = int(config.local_cpus)
    elif address != "auto" and ":" in address and "://" not in address:
        _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ConnectionError(f"cannot reach a Ray cluster at {config.address!r} ({exc}); start one with "
                              "`ray start --head` (see README) or use --ray-address local") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once (instead of Ray's minutes of retries) when nothing listens at a head's HOST:PORT."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"cannot reach a Ray cluster at {address!r} ({exc}); start its head with "
                              "`ray start --head --port PORT` (see README), or use --ray-address local") from None


class JobActor:
    """Holds a stage set (models, subjects) and runs one job at a time; ``cancel`` may arrive meanwhile.

    Becomes a Ray actor class with ``ray.remote(max_concurrency=2)`` (so ``cancel``
    runs while ``run`` streams).
    """

    def __init__(self, device: str, subjects_dirs: list[str] | None, threads: int,
                 stage_set_factory: Callable[[Any, Any], Any] | None = None):
        import torch

        from backend.device import resolve_device
        from backend.subjects import SubjectStore

        torch.set_num_threads(max(1, threads))
        self.device = resolve_device(device)
        subjects = SubjectStore(subjects_dirs)
        if stage_set_factory is None:
            from backend.composition import StageSet as stage_set_factory
        self.stage_set = stage_set_factory(self.device, subjects)
        self.warm_up()
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Run a 1 s landmark job once, so models, subjects and lazy imports are loaded before real jobs."""
        import numpy as np

        from backend.pipeline.base import AUDIO_SAMPLE_RATE, GenerateJob
        from backend.pipeline.local import MessageStageContext, run_stages
        from backend.subjects import DEFAULT_SUBJECT
        from bridge.emotions import EMOTION_INDEX, NUM_EMOTIONS

        frames = 25
        audio = np.random.default_rng(0).normal(0, 0.05, AUDIO_SAMPLE_RATE).astype(np.float32)
        weights = np.zeros((frames, NUM_EMOTIONS), np.float32)
        weights[:, EMOTION_INDEX["neutral"]] = 1.0
        job = GenerateJob("0" * 32, audio, 25.0, frames, weights, np.zeros(frames, np.float32), DEFAULT_SUBJECT,
                          landmarks_only=True)
        stages = self.stage_set.for_job(job)
        terminal = run_stages(job, stages, MessageStageContext(job, stages, self.device, lambda m, s: None))
        if terminal.type != "done":
            log.warning("warm-up job ended %s: %s", terminal.type, terminal.content)

    def info(self) -> dict:
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "device": str(self.device),
                "motion": type(self.stage_set.motion).__name__, "plates": bool(self.stage_set.can_render)}

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel.setdefault(job_id, threading.Event()).set()

    def run(self, spec, request_id: str):
        """Generator: the job's messages as ``(message, stored)``, ending with its terminal message."""
        from backend.pipeline.base import StageError
        from backend.pipeline.local import MessageStageContext, run_stages

        with self._lock:
            cancel = self._cancel.setdefault(spec.job_id, threading.Event())
        out: "queue.Queue[tuple | None]" = queue.Queue()

        def work() -> None:
            try:
                try:
                    stages = self.stage_set.for_job(spec)
                except StageError as exc:
                    stages = [_FailingStage(exc)]
                ctx = MessageStageContext(spec, stages, self.device, lambda m, s: out.put((m, s)),
                                          cancel_event=cancel, parent_id=request_id)
                run_stages(spec, stages, ctx)
            finally:
                out.put(None)

        thread = threading.Thread(target=work, name=f"job-{spec.job_id[:8]}", daemon=True)
        thread.start()
        try:
            while (item := out.get()) is not None:
                yield item
        finally:
            cancel.set()   # the front stopped listening: stop the stages too
            thread.join()
            with self._lock:
                self._cancel.pop(spec.job_id, None)


class _FailingStage:
    name = "setup"
    weight = 1.0

    def __init__(self, error):
        self.error = error

    def run(self, job, ctx) -> None:
        raise self.error


@dataclass(eq=False)
class _Slot:
    """One actor place: the dispatcher thread that feeds it and the actor (re-made after it dies)."""
    index: int
    actor: Any = None
    running: "Job | None" = None
    deaths: int = 0
    thread: threading.Thread | None = None


class RayRunner:
    """A :class:`backend.runners.base.JobRunner` whose jobs run on Ray actors."""
    name = "ray"

    def __init__(self, config: RayRunnerConfig = RayRunnerConfig()):
        self.config = config
        self._owns_cluster = connect(config)
        resources = ray.cluster_resources()
        gpus = config.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        self.gpus_per_worker = float(gpus)
        if config.workers is not None:
            workers = int(config.workers)
        elif self.gpus_per_worker > 0:
            workers = int(resources.get("GPU", 0) // self.gpus_per_worker)
        else:
            workers = int(resources.get("CPU", 1) // max(config.cpus_per_worker, 1e-3))
        if workers < 1:
            raise ValueError(f"the Ray cluster ({dict(resources)}) has no room for a worker needing "
                             f"{config.cpus_per_worker} CPU(s) and {self.gpus_per_worker} GPU(s)")
        self._actor_class = ray.remote(max_concurrency=2)(JobActor)
        self._slots = [_Slot(i) for i in range(workers)]
        self._queue: "collections.deque[Job]" = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._recorder: JobRecorder | None = None
        self._attempts: dict[str, int] = {}    # job id -> re-runs so far (after actor deaths)

    # -- JobRunner -----------------------------------------------------------------
    def start(self, recorder: JobRecorder) -> None:
        self._recorder = recorder
        for slot in self._slots:
            slot.actor = self._new_actor()   # starts loading models at once, in parallel
            slot.thread = threading.Thread(target=self._serve_slot, args=(slot,), name=f"ray-slot-{slot.index}",
                                           daemon=True)
            slot.thread.start()

    def submit(self, job: "Job") -> None:
        with self._cond:
            self._queue.append(job)
            self._cond.notify()

    def cancel(self, job: "Job") -> None:
        job.cancel_event.set()   # the front's own record: no re-run after an actor death
        for slot in self._slots:
            if slot.running is job and slot.actor is not None:
                slot.actor.cancel.remote(job.job_id)   # crosses to the actor's process

    def status(self) -> RunnerStatus:
        with self._cond:
            queued = len(self._queue)
        return RunnerStatus(queued=queued, running=sum(s.running is not None for s in self._slots),
                            workers=len(self._slots))

    def is_alive(self) -> bool:
        return not self._stopping and ray.is_initialized() and any(
            s.thread is not None and s.thread.is_alive() for s in self._slots)

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        for slot in self._slots:
            if slot.running is not None:
                self.cancel(slot.running)
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout_s)
        for slot in self._slots:
            if slot.actor is not None:
                try:
                    ray.kill(slot.actor)
                except Exception:
                    pass
                slot.actor = None
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()

    # -- extras ---------------------------------------------------------------------
    def worker_info(self, timeout_s: float = 120.0) -> list[dict]:
        """Each live actor's pid, node, device (waits for actors still loading models)."""
        refs = [s.actor.info.remote() for s in self._slots if s.actor is not None]
        return ray.get(refs, timeout=timeout_s)

    def actor_of(self, job: "Job") -> Any:
        """The actor running ``job`` now (None when it is not running)."""
        return next((s.actor for s in self._slots if s.running is job), None)

    # -- dispatch --------------------------------------------------------------------
    def _new_actor(self):
        return self._actor_class.options(num_cpus=self.config.cpus_per_worker, num_gpus=self.gpus_per_worker).remote(
            self.config.device, self.config.subjects_dirs, max(1, int(self.config.cpus_per_worker)),
            self.config.stage_set_factory)

    def _next_job(self) -> "Job | None":
        with self._cond:
            while True:
                if self._stopping:
                    return None
                while self._queue:
                    job = self._queue.popleft()
                    if take_queued(job):
                        return job
                self._cond.wait(0.5)

    def _serve_slot(self, slot: _Slot) -> None:
        while (job := self._next_job()) is not None:
            slot.running = job
            try:
                self._run(slot, job)
            except Exception as exc:   # never leave a client waiting, never end the slot
                log.exception("ray runner failed on job %s", job.job_id)
                self._recorder.fail(job, f"the runner failed: {describe(exc)}")
            finally:
                slot.running = None
                if job.terminal_sent:
                    self._attempts.pop(job.job_id, None)

    def _run(self, slot: _Slot, job: "Job") -> None:
        recorder = self._recorder
        attempt = self._attempts.get(job.job_id, 0)
        if attempt == 0:
            recorder.begin(job)
        if slot.actor is None:
            slot.actor = self._new_actor()
        log.info("job %s runs on Ray worker %d%s", job.job_id, slot.index, f" (re-run {attempt})" if attempt else "")
        try:
            recorder.store.update_meta(job.job_id, ray_worker=slot.index, ray_attempt=attempt)
        except (OSError, ValueError) as exc:
            log.error("job %s: cannot record its worker (%s)", job.job_id, exc)
        try:
            stream = slot.actor.run.options(
                num_returns="streaming", _generator_backpressure_num_objects=self.config.stream_backlog,
            ).remote(job.spec, job.request_id)
            if job.cancel_event.is_set():   # cancelled between take and start
                slot.actor.cancel.remote(job.job_id)
            for ref in stream:
                msg, stored = ray.get(ref)
                recorder.record(job, msg, stored)
            if not job.terminal_sent:
                recorder.fail(job, "the Ray worker ended the job without a result")
        except RayTaskError as exc:   # an exception in the actor's own code (not in a stage)
            recorder.fail(job, f"the Ray worker failed: {exc.cause if exc.cause else exc}")
        except (RayError, GetTimeoutError) as exc:   # the actor, its process or its node died
            self._actor_died(slot, job, attempt, exc)

    def _actor_died(self, slot: _Slot, job: "Job", attempt: int, exc: BaseException) -> None:
        recorder = self._recorder
        slot.deaths += 1
        try:
            ray.kill(slot.actor)
        except Exception:
            pass
        slot.actor = None if self._stopping else self._new_actor()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"the Ray worker running it died ({type(exc).__name__}: {first_line[:300]})"
        log.error("job %s: %s", job.job_id, why)
        if job.terminal_sent:
            return
        if job.cancel_event.is_set() or self._stopping:
            recorder.cancelled(job)
            return
        if attempt < self.config.max_retries:
            recorder.warn(job, f"{why}; running it again from the start on another worker "
                               f"(frames already received stay valid: the re-run sends the same ones)")
            self._attempts[job.job_id] = attempt + 1
            with job.lock:
                job.state = "queued"
            with self._cond:
                self._queue.appendleft(job)
                self._cond.notify()
            return
        recorder.fail(job, f"{why}, {attempt + 1} time(s); the job failed (frames already received are valid; "
                           "submit it again)")
