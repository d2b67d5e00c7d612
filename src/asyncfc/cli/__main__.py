"""``python -m asyncfc.cli``: the ``asyncfc`` command."""

from . import main

raise SystemExit(main())
