"""Where the manifest meets the engine: the workspace, titles and shots, and the node makers.

``workspace`` loads the manifest and probes sources (``streams`` picks each audio track's
stream); the node makers listed in ``makers`` turn titles and shots into frozen actions —
``analysis`` (per title: ingest, shot detection), ``chains`` (per shot: ingest or extract, chain
segments), ``audio``, ``deliverables`` (each kind: ``prores``, ``streaming``, ``imf``) and
``qc`` — over the shared ``nodes`` and ``titles``; ``runners`` runs those actions; ``build``
walks it all on the engine, sending cache misses to an executor listed in ``executors``
(``local_executor`` here, or the farm's Ray executor).
"""
