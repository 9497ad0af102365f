"""The review page: ``restoro review``'s server and session, the proxies it plays, what it looks
at (each variant's cached shot outputs) and review counts. The decisions file itself is
``restoro/review_file.py``; which variant a ``select: approved`` master takes per shot is
``restoro/plan/approvals.py``."""
