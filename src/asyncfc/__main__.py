"""``python -m asyncfc``: the ``asyncfc`` command."""

from .cli import main

raise SystemExit(main())
