from .ds2d2_distill import DS2D2Distill

__all__ = ['DS2D2Distill']
