from .amplifier_loss import Amplifier, AmplifierLoss, same_features
from .crosskd_loss import (CrossKDLoss, align_scale, cross_head, head_features,
                           head_from)
from .dense_amplifier_loss import (DenseAmplifierLoss, dense_amplifier_loss,
                                   flatten_levels)
from .disw_spectral_loss import DISWSpectralLoss, disw_spectral_loss
from .kd_quality_focal_loss import KDQualityFocalLoss, kd_quality_focal_loss
from .roi_amplifier_loss import (RoIAmplifierLoss, roi_amplifier_loss,
                                 top_class_deltas)

__all__ = [
    'Amplifier', 'AmplifierLoss', 'CrossKDLoss', 'DenseAmplifierLoss',
    'DISWSpectralLoss', 'KDQualityFocalLoss', 'RoIAmplifierLoss',
    'align_scale', 'cross_head', 'dense_amplifier_loss', 'disw_spectral_loss',
    'flatten_levels', 'head_features', 'head_from', 'kd_quality_focal_loss',
    'roi_amplifier_loss', 'same_features', 'top_class_deltas'
]
