"""The build engine: keys, store, stat cache, locks, events and executors.

The lead's graph/planner modules build on these; import submodules directly
(``from restoro.engine.store import Store``) so importing the package stays cheap.
"""
