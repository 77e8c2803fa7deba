"""The default runner: one job at a time on a worker thread of the serving process (today's behaviour)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from backend.runners.base import JobRecorder, RunnerStatus

if TYPE_CHECKING:
    from backend.server.worker import Job, JobWorker


class InProcessRunner:
    """Runs jobs with the server's own stage set on a ``JobWorker`` thread (built at ``start``)."""
    name = "in-process"

    def __init__(self, stage_set: Any):
        self.stage_set = stage_set
        self.worker: "JobWorker | None" = None
        self._pending: list["Job"] = []   # submitted before start (jobs recovered after a restart)

    def start(self, recorder: JobRecorder) -> None:
        from backend.server.worker import JobWorker

        self.worker = JobWorker(self.stage_set, recorder.store, recorder.outbox, recorder.wake, key=recorder.key)
        for job in self._pending:
            self.worker.submit(job)
        self._pending.clear()
        self.worker.start()

    def submit(self, job: "Job") -> None:
        if self.worker is None:
            self._pending.append(job)
        else:
            self.worker.submit(job)

    def cancel(self, job: "Job") -> None:
        job.cancel_event.set()   # same process: the stage context polls this very flag

    def status(self) -> RunnerStatus:
        if self.worker is None:
            return RunnerStatus(queued=len(self._pending), running=0, workers=1)
        return RunnerStatus(queued=self.worker.queued(), running=int(self.worker.current is not None), workers=1)

    def is_alive(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel the running job, end the worker and wait (up to ``timeout_s``) for its thread to finish."""
        if self.worker is not None:
            self.worker.stop()
            if self.worker is not threading.current_thread():
                self.worker.join(timeout_s)
