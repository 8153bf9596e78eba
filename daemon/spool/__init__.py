"""The spool: the gateway's durable queue between ingest and the time-series writer.

In: committed batches of points, with the broker receipts they answer for.
Out: points in order for the InfluxDB writer, receipts released once the points are on disk,
and the quota and backlog figures the health points report.
"""
