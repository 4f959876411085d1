from .ds2d2_distiller import DS2D2Distiller

__all__ = ['DS2D2Distiller']
