from .ds2d2_distill import DS2D2Distill
from .scale_free_ds2d2_distill import ScaleFreeDS2D2Distill, share_scaled

__all__ = ['DS2D2Distill', 'ScaleFreeDS2D2Distill', 'share_scaled']
