"""`python -m daemon.cli`: the `depotwatch` command."""

from daemon.cli.main import main

raise SystemExit(main())
