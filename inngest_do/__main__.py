"""``python -m inngest_do``: the ``inngest-do`` command (see :mod:`inngest_do.cli`)."""

from .cli import main

raise SystemExit(main())
