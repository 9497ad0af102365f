"""Where the manifest meets the engine: the workspace, titles and shots, and the node makers.

``workspace`` loads the manifest and probes sources; ``nodes`` turns titles and shots into
frozen actions (ingest, shot detection, per-shot chains); ``runners`` runs those actions;
``audio``, ``prores``, ``streaming``, ``imf`` and ``qc`` add the deliverable and QC nodes (each
deliverable kind is registered in ``deliverables``); ``build`` walks it all on the engine.
"""
