"""Training-loop additions (hooks), registered in MMDetection's registry."""
from .hooks import StopOnInvalidLossHook

__all__ = ['StopOnInvalidLossHook']
