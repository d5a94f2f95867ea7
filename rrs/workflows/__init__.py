"""Workflows: multi-step computations shared by the command line, the app and the study."""
