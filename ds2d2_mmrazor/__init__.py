"""DS2D2 (Dual-Stream Spectral Decoupling Distillation) for MMRazor.

Importing this package (e.g. through ``custom_imports`` in a config) applies
the runtime shims of :mod:`ds2d2_mmrazor.compat` that every process needs
(MMEngine Runner checkpoints load on torch >= 2.6 with weights-only loading
kept on), and registers this package's modules: the distillation
algorithm, distiller, connector and losses in MMRazor's registry, the
high-frequency amplifier detector, the DIOR dataset, its packing
transform and the StopOnInvalidLossHook in MMDetection's, the DIOR-R and
DOTA datasets in MMRotate's.
"""
from .compat import allow_runner_checkpoints
from .version import __version__

allow_runner_checkpoints()

from . import datasets, engine, models, ops  # noqa: E402,F401  (registers)

__all__ = ['__version__', 'allow_runner_checkpoints']
