"""Pure tensor functions of DS2D2: wavelet transform and DISW weights."""
from .disw import disw_pyramid, disw_weights
from .disw_reference import disw_reference
from .wavelet import dwt2d, high_frequency

__all__ = [
    'disw_pyramid', 'disw_reference', 'disw_weights', 'dwt2d',
    'high_frequency'
]
