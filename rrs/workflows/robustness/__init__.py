"""What a guarantee is worth (issue 15): see :mod:`rrs.workflows.robustness.profile`."""
from .profile import *  # noqa: F401,F403
from .profile import __all__  # noqa: F401
