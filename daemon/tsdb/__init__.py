"""Time series: readings and alerts as InfluxDB line protocol, and the writers that POST it.

In: `Reading`s and `Alert`s (as points), and batches taken from the spool.
Out: line protocol to InfluxDB 1.x (/write) or a v2 write API, or to a local file.
"""
