from .high_frequency_amplifier import (HighFrequencyAmplifier,
                                       HighFrequencyMixin,
                                       high_frequency_class)

__all__ = [
    'HighFrequencyAmplifier', 'HighFrequencyMixin', 'high_frequency_class'
]
