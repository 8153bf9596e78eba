"""The gateway's HTTP side: officers' API, duty console, Prometheus metrics and health.

In: the running daemon's alarm desk, recent events and counters (read at request time).
Out: JSON, HTML pages, /metrics text and /healthz, /readyz answers.
"""
