"""Frame stages: one module per stage (``base`` holds the uniform shape), listed in ``registry``."""
