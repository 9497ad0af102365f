"""Models: built-in and file model references, loading, and tiled batched inference."""
