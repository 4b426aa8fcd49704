"""A user's frame stream on this worker: the hub that fans logged frames out to the tabs, the
``ready`` snapshot, and the unlogged notices about turns."""
