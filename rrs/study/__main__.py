"""``python -m rrs.study`` — the evaluation study (same options as ``python -m rrs evaluate``)."""
import sys

from .cli import main

sys.exit(main())
