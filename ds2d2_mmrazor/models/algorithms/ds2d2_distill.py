"""The DS2D2 distillation algorithm (stage 3 of the recipe)."""
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import load_checkpoint
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS
from torch import Tensor, nn

STAGES = dict(
    teacher_ckpt='train the teacher first (stage 1, e.g. '
    '`python tools/train.py configs/retinanet_r101_fpn_2x_dior.py`)',
    amplifier_ckpt='train the high-frequency amplifier first (stage 2, e.g. '
    '`python tools/train.py '
    'configs/ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py`)')


def check_checkpoint(field: str, path: Optional[str]) -> None:
    """Fail early, naming the stage that writes a missing checkpoint."""
    if path is None:
        MMLogger.get_current_instance().warning(
            f'DS2D2Distill: {field} is None, so that model keeps its random '
            'initialisation. Fine for tests; for training, '
            f'{STAGES[field]}.')
    elif not osp.isfile(path):
        raise FileNotFoundError(
            f'{field} {path!r} not found: {STAGES[field]}, or point it to '
            f'the file with --cfg-options model.{field}=PATH')


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
        super().__init__(teacher_ckpt=teacher_ckpt, **kwargs)

        self.amplifier: Optional[nn.Module] = None
        if amplifier is not None:
            if isinstance(amplifier, dict):
                amplifier = MODELS.build(amplifier)
            if amplifier_ckpt:
                load_checkpoint(amplifier, amplifier_ckpt, map_location='cpu')
                amplifier._is_init = True  # keep the loaded weights
            amplifier.requires_grad_(False)
            self.amplifier = amplifier
        self.teacher.requires_grad_(False)
        self._bind_amplifier_losses()

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
