"""Running a worker: metrics, logs, health pages, background sweeps, graceful shutdown and
the ``parley serve`` supervisor."""
