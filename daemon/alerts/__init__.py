"""Alerts: rule transitions to alarms officers work with, and the records of what they did.

In: `Transition`s from the rule engine; officers' actions (API, console, MQTT commands).
Out: alert changes for the notifiers, the alarm lifecycle (acknowledge, check, clear, silence,
escalate) and the hash-chained audit trail.
"""
