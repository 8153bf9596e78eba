"""The monthly PSSM record: facts from InfluxDB and the audit trail, as CSV, JSON or PDF.

In: a config, an InfluxDB to query and the audit log of the month.
Out: the report's sections (climate, access, movement, supervision, alarms) and its files.
"""
