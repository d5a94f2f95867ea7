"""Figures for the app: see :mod:`ui.plots.maps`."""
from .maps import *  # noqa: F401,F403
from .maps import _FONT, __all__  # noqa: F401
