"""``persisty`` (and ``python -m persisty``): the command line, or one line naming its extra.

The commands need ``typer`` and ``rich`` (the ``serve`` extra); a plain install still runs
the command, which then says what to install instead of failing with a traceback.
"""

from __future__ import annotations

import sys

NEEDS_EXTRA = 'persisty: the command line needs the serve extra: pip install "persisty[serve]"'


def main() -> None:
    """Entry point of the ``persisty`` console script."""
    try:
        from persisty.cli import cli
    except ModuleNotFoundError as e:
        if e.name not in {"typer", "rich", "click"}:
            raise
        print(NEEDS_EXTRA, file=sys.stderr)
        asked_for_help = not sys.argv[1:] or sys.argv[1:] in (["--help"], ["-h"])
        raise SystemExit(0 if asked_for_help else 1) from None
    cli()


if __name__ == "__main__":
    main()
