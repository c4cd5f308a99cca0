"""Seawall's benchmark harness: ``python -m bench`` (``make bench``).

Starts Seawall (SQLite and PostgreSQL), CNCF Distribution and nginx (sendfile) on loopback,
drives each with the same clients in one run, and prints a table with ratios; the results
also go to bench/results/latest.json.  See bench/README.md.
"""
