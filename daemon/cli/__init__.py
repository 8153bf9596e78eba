"""The `depotwatch` command line: run, check-config, demo, simulator, replay and the tools.

In: arguments and a config file.
Out: a running daemon, or the answer of one subcommand and its exit status.
"""
