"""The manifest: pydantic models, YAML loading with positions, diagnostics, resolution, schema.

Import from the submodules (``restoro.manifest.loader.load_manifest``...); this package stays
import-light so ``restoro --help`` is fast.
"""
