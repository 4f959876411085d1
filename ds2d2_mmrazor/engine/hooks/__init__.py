from .gradient_balance_hook import (GradientBalanceHook, gradient_norm,
                                    gradient_norms, split_terms)
from .stop_on_invalid_loss_hook import StopOnInvalidLossHook

__all__ = ['GradientBalanceHook', 'StopOnInvalidLossHook', 'gradient_norm',
           'gradient_norms', 'split_terms']
