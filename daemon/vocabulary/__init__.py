"""The words every layer shares: readings, transitions, alerts, errors, the clock, and how a
listening server stops.

In: nothing of the project (this package imports only the standard library).
Out: the types that drivers, decoders, rules and the daemon's stages pass to one another.
"""
