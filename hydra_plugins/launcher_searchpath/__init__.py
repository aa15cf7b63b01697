"""Hydra plugin: the user's ./conf on the search path (see searchpath.py)."""
