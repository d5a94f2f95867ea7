"""``python -m rrs …``: the command line (see :mod:`rrs.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
