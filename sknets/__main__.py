"""``python -m sknets``: the same as the ``sknets`` command."""

from .cli import main

raise SystemExit(main())
