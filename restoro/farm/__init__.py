"""The farm: running a build's actions on a Ray cluster against a shared (object) store.

Ray executor, actors, preflight and worker, the S3/object store with its local cache and the
leases kept in it. Depends on the engine; the planner (``restoro.plan``) picks it for
``--executor ray`` and hands it the modules whose action runners a worker must import.
"""
