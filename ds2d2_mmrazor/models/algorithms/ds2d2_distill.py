"""The DS2D2 distillation algorithm (stage 3 of the recipe)."""
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS
from torch import Tensor, nn

from ...utils import load_stage_checkpoint
from ..architectures.connectors import WaveletConnector

STAGES = dict(teacher_ckpt='the teacher (stage 1)',
              amplifier_ckpt='the high-frequency amplifier (stage 2)')


def stage_hint(field: str, path: Optional[str]) -> str:
    """How to produce the checkpoint of ``field``: the configs' default
    paths are ``work_dirs/<config name>/epoch_N.pth``, so the config to
    train is named by the folder."""
    parts = osp.normpath(path).split(osp.sep) if path else []
    if len(parts) >= 3 and parts[-3] == 'work_dirs':
        return (f'train {STAGES[field]} first: `python tools/train.py '
                f'configs/{parts[-2]}.py`')
    return f'train {STAGES[field]} first with tools/train.py'


def fpn_shape(model: nn.Module) -> Tuple[Optional[int], Optional[int]]:
    """(channels, levels) of a detector's FPN-like neck, None if unknown."""
    neck = getattr(model, 'neck', None)
    return (getattr(neck, 'out_channels', None),
            getattr(neck, 'num_outs', None))


def check_checkpoint(field: str, path: Optional[str]) -> None:
    """Fail early, naming the stage that writes a missing checkpoint."""
    if path is None:
        MMLogger.get_current_instance().warning(
            f'DS2D2Distill: {field} is None, so that model keeps its random '
            'initialisation. Fine for tests; for training, '
            f'{stage_hint(field, path)}.')
    elif not osp.isfile(path):
        raise FileNotFoundError(
            f'{field} {path!r} not found: {stage_hint(field, path)}, or '
            f'point to the file with --cfg-options model.{field}=PATH')


@MODELS.register_module()
class DS2D2Distill(SingleTeacherDistill):
    """Dual-Stream Spectral Decoupling Distillation (arXiv 2512.04413).

    Per iteration: the frozen teacher's backbone and neck run once under
    ``no_grad``; the student runs its ordinary training step, during which
    the distiller's recorders take its FPN features and its head's anchors and
    targets; then the distiller's losses compute the explicit stream (wavelet
    bands weighted by DISW) and the implicit stream (the frozen teacher head
    and the frozen high-frequency amplifier head run on student and teacher
    features). Teacher and amplifier stay frozen and in eval mode throughout
    (also after ``runner.train()``); their heads are bound to the amplifier
    losses, not copied, so the student's parameters are unchanged.

    Args:
        amplifier (dict, optional): Config of the stage-2 model
            (``mmdet.HighFrequencyAmplifier``). Required when a loss uses
            ``amplifier='high_frequency'``.
        amplifier_ckpt (str, optional): Its checkpoint (stage 2 output).
        teacher_ckpt (str, optional): Teacher checkpoint (stage 1 output).
        **kwargs: ``architecture`` (the student), ``teacher``,
            ``distiller`` (a ``DS2D2Distiller``) and the other arguments of
            MMRazor's ``SingleTeacherDistill``.
    """

    def __init__(self,
                 amplifier: Optional[Union[dict, BaseModel]] = None,
                 amplifier_ckpt: Optional[str] = None,
                 teacher_ckpt: Optional[str] = None,
                 **kwargs) -> None:
        if kwargs.get('teacher_trainable'):
            raise ValueError('DS2D2Distill needs a frozen teacher: '
                             'teacher_trainable must be False')
        check_checkpoint('teacher_ckpt', teacher_ckpt)
        if amplifier is not None:
            check_checkpoint('amplifier_ckpt', amplifier_ckpt)
        # the teacher checkpoint is loaded below, strictly
        super().__init__(teacher_ckpt=None, **kwargs)
        if teacher_ckpt:
            load_stage_checkpoint(self.teacher, teacher_ckpt,
                                  'model.teacher_ckpt', 'teacher')
            self.teacher._is_init = True  # keep the loaded weights

        self.amplifier: Optional[nn.Module] = None
        if amplifier is not None:
            if isinstance(amplifier, dict):
                amplifier = MODELS.build(amplifier)
            if amplifier_ckpt:
                load_stage_checkpoint(amplifier, amplifier_ckpt,
                                      'model.amplifier_ckpt',
                                      'high-frequency amplifier')
                amplifier._is_init = True
            amplifier.requires_grad_(False)
            self.amplifier = amplifier
        self.teacher.requires_grad_(False)
        self._check_feature_shapes()
        self._bind_amplifier_losses()

    def _check_feature_shapes(self) -> None:
        """Fail before training when student and teacher FPN features cannot
        be compared: level counts differ; channels differ where no adapter
        maps them (the amplifier heads take student features as they are);
        an adapter that does not fit its side."""
        s_channels, s_levels = fpn_shape(self.student)
        t_channels, t_levels = fpn_shape(self.teacher)
        if s_levels and t_levels and s_levels != t_levels:
            raise ValueError(
                f'the student FPN has {s_levels} levels '
                f'(architecture.neck.num_outs), the teacher {t_levels} '
                '(teacher.neck.num_outs): DS2D2 compares them level by '
                f'level; set architecture.neck.num_outs={t_levels}')
        if not (s_channels and t_channels):
            return
        if s_channels != t_channels and \
                any(True for _ in self.distiller.bindable_losses()):
            raise ValueError(
                f'the student FPN has {s_channels} channels '
                f'(architecture.neck.out_channels), the teacher '
                f'{t_channels} (teacher.neck.out_channels): the amplifier '
                "losses run the teacher's heads on the student's features, "
                f'so set architecture.neck.out_channels={t_channels}')
        for loss_name, mapping in self.distiller.loss_forward_mappings.items():
            for record in mapping.values():
                name = record.get('connector')
                connector = self.distiller.connectors[name] if name else None
                if not isinstance(connector, WaveletConnector):
                    continue
                side, channels = ('student', s_channels) \
                    if record['from_student'] else ('teacher', t_channels)
                field = f'model.distiller.connectors.{name}'
                if connector.in_channels not in (None, channels):
                    raise ValueError(
                        f'{field}.in_channels is {connector.in_channels} but '
                        f'the {side} FPN has {channels} channels: set '
                        f'in_channels={channels}')
                out = connector.out_channels or channels
                if out != t_channels:
                    raise ValueError(
                        f'{loss_name} compares {out}-channel {side} bands '
                        f'(from {field}) with {t_channels}-channel teacher '
                        f'bands: give {field} a 1x1 adapter, '
                        f'in_channels={channels}, out_channels={t_channels}')

    def _bind_amplifier_losses(self) -> None:
        for loss in self.distiller.bindable_losses():
            if loss.amplifier == 'teacher':
                loss.bind(self.teacher)
            elif self.amplifier is None:
                raise ValueError(
                    f'a distill loss uses amplifier={loss.amplifier!r} but '
                    'DS2D2Distill has no `amplifier`: add the stage-2 model '
                    'config (and amplifier_ckpt)')
            else:
                loss.bind(self.amplifier,
                          self.amplifier.high_frequency_features)

    def loss(self, batch_inputs: Tensor,
             data_samples: Optional[List] = None) -> Dict[str, Tensor]:
        """Student task losses (``student.*``) and DS2D2 terms
        (``distill.*``)."""
        losses = dict()
        self.distiller.set_deliveries_override(False)
        with self.distiller.teacher_recorders, self.distiller.deliveries, \
                torch.no_grad():
            self.teacher.extract_feat(batch_inputs)
        self.distiller.set_deliveries_override(True)
        with self.distiller.student_recorders, self.distiller.deliveries:
            student_losses = self.student(
                batch_inputs, data_samples, mode='loss')
        losses.update(add_prefix(student_losses, 'student'))
        if not self.distillation_stopped:
            losses.update(add_prefix(
                self.distiller.compute_distill_losses(data_samples),
                'distill'))
        return losses

    def train(self, mode: bool = True) -> 'DS2D2Distill':
        """Set the student's mode; teacher and amplifier stay in eval."""
        super().train(mode)
        self.teacher.eval()
        if self.amplifier is not None:
            self.amplifier.eval()
        return self
