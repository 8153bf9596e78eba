"""Ingest: raw messages from the drivers to judged readings.

In: `RawMessage` from a driver (MQTT topic, serial port, Modbus bus) and its route.
Out: decoded `Reading`s and their points for the spool, rule transitions for the alert stage,
and dead letters (kept, counted, logged once) for what could not be decoded.
"""
