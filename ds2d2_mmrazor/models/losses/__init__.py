from .amplifier_loss import AmplifierLoss
from .dense_amplifier_loss import DenseAmplifierLoss
from .disw_spectral_loss import DISWSpectralLoss, disw_spectral_loss
from .kd_quality_focal_loss import KDQualityFocalLoss, kd_quality_focal_loss
from .roi_amplifier_loss import RoIAmplifierLoss

__all__ = [
    'AmplifierLoss', 'DenseAmplifierLoss', 'DISWSpectralLoss',
    'disw_spectral_loss', 'KDQualityFocalLoss', 'kd_quality_focal_loss',
    'RoIAmplifierLoss'
]
