from .high_frequency_amplifier import (HighFrequencyAmplifier,
                                       HighFrequencyHeads,
                                       HighFrequencyMixin,
                                       build_detector_part,
                                       high_frequency_class,
                                       high_frequency_view)

__all__ = [
    'HighFrequencyAmplifier', 'HighFrequencyHeads', 'HighFrequencyMixin',
    'build_detector_part', 'high_frequency_class', 'high_frequency_view'
]
