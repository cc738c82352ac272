"""`python -m crawler` is the `crawler` command."""

from .cli import main

raise SystemExit(main())
