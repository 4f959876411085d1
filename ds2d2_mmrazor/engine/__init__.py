"""Training-loop additions (hooks), registered in MMDetection's registry."""
from .hooks import (GradientBalanceHook, StopOnInvalidLossHook,
                    gradient_norm, gradient_norms, split_terms)

__all__ = ['GradientBalanceHook', 'StopOnInvalidLossHook', 'gradient_norm',
           'gradient_norms', 'split_terms']
