from .amplifier_loss import Amplifier, AmplifierLoss, same_features
from .dense_amplifier_loss import (DenseAmplifierLoss, dense_amplifier_loss,
                                   flatten_levels)
from .disw_spectral_loss import DISWSpectralLoss, disw_spectral_loss
from .kd_quality_focal_loss import KDQualityFocalLoss, kd_quality_focal_loss
from .roi_amplifier_loss import (RoIAmplifierLoss, roi_amplifier_loss,
                                 top_class_deltas)

__all__ = [
    'Amplifier', 'AmplifierLoss', 'DenseAmplifierLoss', 'DISWSpectralLoss',
    'KDQualityFocalLoss', 'RoIAmplifierLoss', 'dense_amplifier_loss',
    'disw_spectral_loss', 'flatten_levels', 'kd_quality_focal_loss',
    'roi_amplifier_loss', 'same_features', 'top_class_deltas'
]
