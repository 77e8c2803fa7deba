"""Where a backend's jobs run: behind the :class:`~backend.runners.base.JobRunner` seam.

``in_process`` (the default) runs jobs one at a time on a thread of the serving
process; ``ray_runner`` runs them on Ray actors across a cluster (imported only
for ``emogene serve --runner ray``; needs the ``ray`` extra). Either way the
server's ZeroMQ front, its validation and its job store stay the same.
"""
