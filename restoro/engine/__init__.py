"""The build engine, generic and media-agnostic: it runs frozen action specs, never a manifest.

Canonical keys (``keys``), the content-addressed store and action cache (``store``), the stat
cache (``state``), the lockfile writer (``lockfile``), the graph and planner with reasons
(``graph``), executors and slots (``executor``), running one spec (``execute``) through the
runner registry the domain fills (``actions``), the workspace lock (``lock``), leases
(``leases``), events (``events``) and build records (``records``). It imports nothing from the
domain packages (``lint-imports`` checks that); import submodules directly so importing the
package stays cheap.
"""
