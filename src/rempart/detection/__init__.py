"""Detection and containment: notice bulk use of valid credentials and stop it (DESIGN.md, 8 and 9).

``engine`` holds the logic, independent of HTTP; ``store`` keeps the shared counters (Redis, or in
process for the embedded default); ``thresholds`` is the one readable configuration; ``service``
holds the database side (alerts, containments, kill switches) and ``api`` the operators' routes.
"""
