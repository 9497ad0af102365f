"""Review and approval: reviewers' decisions per shot (``restoro.review.yaml``), what they look
at (each variant's cached shot outputs), and the ``restoro review`` web page."""
