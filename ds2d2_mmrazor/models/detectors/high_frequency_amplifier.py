"""Stage 2 of DS2D2: a detector head trained on high-frequency features,
and the part of it stage 3 keeps."""
import copy
import functools
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...ops import dwt2d, high_frequency
from ...utils import load_stage_checkpoint


def high_frequency_view(feats: Sequence[Tensor],
                        wavelet: str) -> Tuple[Tensor, ...]:
    """HF(F) = cH + cV + cD of each FPN level, resized back to the level's
    size (differentiable w.r.t. ``feats``)."""
    return tuple(high_frequency(f, wavelet) for f in feats)


class HighFrequencyMixin:
    """Turns a detector class into a high-frequency amplifier.

    ``extract_feat`` runs the frozen backbone and neck without gradients and
    returns :func:`high_frequency_view` of the FPN levels; the heads (dense
    head, or RPN and RoI head) train on it with the detector's own
    ``loss``. Backbone and neck stay in eval mode. A mixin, not a wrapper:
    the detector's ``loss`` / ``predict`` (single- and two-stage alike) call
    ``self.extract_feat``, so overriding that one method reuses them as
    they are, and the state-dict keys stay the teacher's (its checkpoint
    loads as is).
    """
    hf_wavelet: str = 'haar'

    def high_frequency_features(self,
                                feats: Tuple[Tensor, ...]) -> Tuple[Tensor]:
        """HF(F) of each level (differentiable w.r.t. ``feats``)."""
        return high_frequency_view(feats, self.hf_wavelet)

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
    """``HighFrequency<Detector>``: the mixin over a detector class (cached).

    It is published in this module under its name, so that its instances
    pickle like those of any class.
    """
    name = f'HighFrequency{detector_class.__name__}'
    cls = type(name, (HighFrequencyMixin, detector_class),
               dict(__module__=__name__, __qualname__=name))
    globals()[name] = cls
    return cls


def check_wavelet(wavelet: str) -> None:
    """A bad wavelet name fails here, before any model is built."""
    dwt2d(torch.zeros(1, 1, 2, 2), wavelet)


@MODELS.register_module()
def HighFrequencyAmplifier(detector: dict,
                           teacher_ckpt: Optional[str] = None,
                           wavelet: str = 'haar') -> nn.Module:
    """Build the high-frequency amplifier of DS2D2 (arXiv 2512.04413).

    The detector is built from ``detector`` (the teacher's config) as an
    instance of ``HighFrequency<Detector>`` (:func:`high_frequency_class`):
    the same modules and state-dict keys, so the teacher's checkpoint loads
    into it. Backbone and neck are frozen; with ``teacher_ckpt`` the whole
    model is loaded from the teacher's checkpoint when built, which must fit
    it exactly (see :func:`~ds2d2_mmrazor.utils.load_stage_checkpoint`), and
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
    check_wavelet(wavelet)
    if teacher_ckpt is not None and not osp.isfile(teacher_ckpt):
        raise FileNotFoundError(
            f'HighFrequencyAmplifier teacher_ckpt {teacher_ckpt!r} not '
            'found: train the teacher first (stage 1), or point to it '
            'with --cfg-options model.teacher_ckpt=PATH')
    cfg = copy.deepcopy(dict(detector))
    cfg['type'] = high_frequency_class(MODELS.get(cfg['type']))
    model = MODELS.build(cfg)
    model.hf_wavelet = wavelet
    if teacher_ckpt is not None:
        load_stage_checkpoint(model, teacher_ckpt, 'model.teacher_ckpt',
                              'teacher architecture')
        # initialised: init_weights (ImageNet init_cfg included) is skipped
        model._is_init = True
    for part in model.frozen_parts():
        part.requires_grad_(False)
    return model


def build_detector_part(detector: dict, part: str) -> nn.Module:
    """One head of a detector config, built as the detector builds it.

    ``bbox_head`` (single-stage) gets the detector's ``train_cfg`` and
    ``test_cfg``, ``roi_head`` (two-stage) their ``rcnn`` entries, as
    MMDetection's ``SingleStageDetector`` / ``TwoStageDetector`` do, and
    the part is built in the detector's registry scope (``_scope_``).
    """
    if part not in ('bbox_head', 'roi_head'):
        raise ValueError(f"part must be 'bbox_head' or 'roi_head', got "
                         f'{part!r}')
    if detector.get(part) is None:
        parts = sorted(k for k in ('bbox_head', 'roi_head', 'rpn_head')
                       if detector.get(k) is not None)
        raise ValueError(
            f'the amplifier\'s detector config has no {part} (it has '
            f'{parts}): the amplifier losses and the amplifier must be of '
            'the same detector type')
    cfg = copy.deepcopy(dict(detector[part]))
    train_cfg, test_cfg = detector.get('train_cfg'), detector.get('test_cfg')
    if part == 'roi_head':
        train_cfg = train_cfg.get('rcnn') if train_cfg else None
        test_cfg = test_cfg.get('rcnn') if test_cfg else None
    cfg.update(train_cfg=train_cfg, test_cfg=test_cfg)
    if detector.get('_scope_'):  # the scope the detector is built in
        cfg.setdefault('_scope_', detector['_scope_'])
    return MODELS.build(cfg)


class HighFrequencyHeads(BaseModule):
    """What stage 3 keeps of a trained high-frequency amplifier: the heads
    the amplifier losses run, reading :func:`high_frequency_view`.

    Stage 3 never runs the amplifier's backbone and neck (the heads read the
    student's and the teacher's FPN features), so they are not built: a
    ResNet-101 and its FPN that would cost memory for nothing. The parts
    keep their names (``bbox_head`` or ``roi_head``), so a stage-3
    checkpoint holds ``amplifier.<part>.*`` only, the same keys the full
    amplifier has for them.

    Args:
        parts (dict[str, nn.Module]): The heads, by detector attribute.
        wavelet (str): Wavelet of the HF view. Defaults to 'haar'.
    """

    def __init__(self, parts: Dict[str, nn.Module],
                 wavelet: str = 'haar') -> None:
        super().__init__()
        check_wavelet(wavelet)
        self.wavelet = wavelet
        for name, module in parts.items():
            self.add_module(name, module)

    def high_frequency_features(self,
                                feats: Tuple[Tensor, ...]) -> Tuple[Tensor]:
        """HF(F) of each level (differentiable w.r.t. ``feats``)."""
        return high_frequency_view(feats, self.wavelet)

    @classmethod
    def build(cls, amplifier: dict,
              parts: Sequence[str]) -> 'HighFrequencyHeads':
        """Build only ``parts`` of a stage-2 amplifier config.

        Args:
            amplifier (dict): The stage-2 model config
                (``HighFrequencyAmplifier``: ``detector``, ``wavelet``).
                Its ``teacher_ckpt`` is not read: stage 3 loads the
                amplifier's own checkpoint.
            parts (Sequence[str]): Detector attributes to build.
        """
        if 'detector' not in amplifier:
            raise ValueError(
                'amplifier must be the stage-2 model config '
                "(type='mmdet.HighFrequencyAmplifier', detector=..., "
                f'wavelet=...); got the keys {sorted(amplifier)}')
        return cls({part: build_detector_part(amplifier['detector'], part)
                    for part in parts}, amplifier.get('wavelet', 'haar'))

    @classmethod
    def of(cls, amplifier: nn.Module,
           parts: Sequence[str]) -> 'HighFrequencyHeads':
        """Take ``parts`` of a built high-frequency amplifier."""
        return cls({part: getattr(amplifier, part) for part in parts},
                   getattr(amplifier, 'hf_wavelet', 'haar'))
