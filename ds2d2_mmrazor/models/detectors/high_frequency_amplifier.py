"""Stage 2 of DS2D2: a detector head trained on high-frequency features."""
import functools
import os.path as osp
from typing import Optional, Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...ops import dwt2d, high_frequency
from ...utils import load_stage_checkpoint


class HighFrequencyMixin:
    """Turns a detector into a high-frequency amplifier.

    ``extract_feat`` runs the frozen backbone and neck without gradients and
    returns HF(F) = cH + cV + cD of each FPN level, resized back to the
    level's size; the heads (dense head, or RPN and RoI head) train on it
    with the detector's ordinary losses. Backbone and neck stay in eval mode.
    """
    hf_wavelet: str = 'haar'

    def high_frequency_features(self,
                                feats: Tuple[Tensor, ...]) -> Tuple[Tensor]:
        """HF(F) of each level (differentiable w.r.t. ``feats``)."""
        return tuple(high_frequency(f, self.hf_wavelet) for f in feats)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        with torch.no_grad():
            feats = super().extract_feat(batch_inputs)
        return self.high_frequency_features(feats)

    def train(self, mode: bool = True) -> nn.Module:
        super().train(mode)
        for part in self.frozen_parts():
            part.eval()
        return self

    def frozen_parts(self) -> Tuple[nn.Module, ...]:
        return tuple(getattr(self, name) for name in ('backbone', 'neck')
                     if getattr(self, name, None) is not None)


@functools.lru_cache(maxsize=None)
def high_frequency_class(detector_class: type) -> type:
    """The high-frequency variant of a detector class (cached).

    It is published in this module under its name, so that its instances
    pickle like those of any class.
    """
    name = f'HighFrequency{detector_class.__name__}'
    cls = type(name, (HighFrequencyMixin, detector_class),
               dict(__module__=__name__, __qualname__=name))
    globals()[name] = cls
    return cls


@MODELS.register_module()
def HighFrequencyAmplifier(detector: dict,
                           teacher_ckpt: Optional[str] = None,
                           wavelet: str = 'haar') -> nn.Module:
    """Build the high-frequency amplifier of DS2D2 (arXiv 2512.04413).

    The detector is built from ``detector`` (the teacher's config) and
    becomes an instance of ``HighFrequency<Detector>``: the same modules and
    state-dict keys, so the teacher's checkpoint loads into it and its own
    checkpoint loads into the distiller. Backbone and neck are frozen; with
    ``teacher_ckpt`` the whole model is loaded from the teacher's checkpoint
    when built, which must fit it exactly (see
    :func:`~ds2d2_mmrazor.utils.load_stage_checkpoint`), and
    ``init_weights`` leaves it alone: the backbone's ImageNet ``init_cfg``
    is not applied, nothing is downloaded.

    Works for any MMDetection / MMRotate detector with ``extract_feat``
    (single-stage and two-stage); use ``type='mmdet.HighFrequencyAmplifier'``
    from MMRotate configs.

    Args:
        detector (dict): Config of the teacher detector.
        teacher_ckpt (str, optional): Teacher checkpoint (stage 1 output).
        wavelet (str): Wavelet of the HF view. Defaults to 'haar'.

    Returns:
        nn.Module: The amplifier detector.
    """
    dwt2d(torch.zeros(1, 1, 2, 2), wavelet)  # a bad wavelet name fails here
    if teacher_ckpt is not None and not osp.isfile(teacher_ckpt):
        raise FileNotFoundError(
            f'HighFrequencyAmplifier teacher_ckpt {teacher_ckpt!r} not '
            'found: train the teacher first (stage 1), or point to it '
            'with --cfg-options model.teacher_ckpt=PATH')
    model = MODELS.build(detector)
    if teacher_ckpt is not None:
        load_stage_checkpoint(model, teacher_ckpt, 'model.teacher_ckpt',
                              'teacher architecture')
        # initialised: init_weights (ImageNet init_cfg included) is skipped
        model._is_init = True
    model.__class__ = high_frequency_class(type(model))
    model.hf_wavelet = wavelet
    for part in model.frozen_parts():
        part.requires_grad_(False)
    return model
