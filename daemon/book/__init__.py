"""The book: roster, items, movement and work orders kept at run time (issue 19).

In: the config's record sections as a seed, and officers' changes (API, console, CLI). Out: the
records the rules judge against, a versioned history, and audit entries.
"""
