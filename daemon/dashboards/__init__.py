"""Grafana dashboards for depot security staff.

In: a validated config (storehouses, doors, climate classes).
Out: dashboard JSON (InfluxQL), written to files or pushed to Grafana's HTTP API.
"""
