"""Quality control: per-shot and per-deliverable checks, cached like any action.

Each check is a module with a class of the uniform shape in ``restoro.qc.base`` (``id``,
``version``, ``Params``, ``severity``, ``scope``, ``run``). ``restoro.plan.qc`` adds the QC
nodes to a build, ``restoro.qc.verdict`` turns findings into a failing build and
``restoro.qc.report`` writes the HTML and JSON report.
"""
