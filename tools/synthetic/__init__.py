"""The demo's and the tests' own material, not part of the plugin: a
generator of small DIOR-layout datasets (:mod:`.data`) and tiny variants of
this repository's configs that train on a CPU in minutes (:mod:`.tiny`).

Scripts under ``tools/`` import it as ``synthetic`` (``tools/`` is their
``sys.path[0]``); the tests put ``tools/`` on the path in ``conftest.py``.
"""
from .data import SYNTHETIC_CLASSES, make_synthetic_dior
from .tiny import tiny_config

__all__ = ['SYNTHETIC_CLASSES', 'make_synthetic_dior', 'tiny_config']
