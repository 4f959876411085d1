"""The DS2D2 distillation algorithm (stage 3 of the recipe)."""
import os.path as osp
from typing import Optional, Tuple, Union

from mmengine.logging import MMLogger
from mmrazor.models.algorithms import FpnTeacherDistill
from mmrazor.registry import MODELS
from torch import nn

from ...utils import load_stage_checkpoint
from ..architectures.connectors import WaveletConnector
from ..detectors import HighFrequencyHeads
from ..losses.amplifier_loss import same_features

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
class DS2D2Distill(FpnTeacherDistill):
    """Dual-Stream Spectral Decoupling Distillation (arXiv 2512.04413).

    MMRazor's ``FpnTeacherDistill`` runs the iteration: the frozen teacher's
    backbone and neck once under ``no_grad``, then the student's ordinary
    training step, while the distiller's recorders take the FPN features of
    both, the student head's targets (or sampled RoIs) and the batch; then
    the distiller's losses compute the explicit stream (wavelet bands
    weighted by DISW) and the implicit stream (the frozen teacher head and
    the frozen high-frequency amplifier head run on student and teacher
    features). What this class adds is the set-up: the two earlier stages'
    checkpoints loaded strictly; of the stage-2 amplifier only the heads the
    losses run (:class:`HighFrequencyHeads`: stage 3 never runs its
    backbone and neck); teacher and amplifier handed to the distiller
    (:meth:`DS2D2Distiller.set_amplifiers`); checks, before training, that
    the features can be compared; teacher and amplifier frozen and in eval
    mode (also after ``runner.train()``).

    Args:
        amplifier (dict | nn.Module, optional): Config of the stage-2 model
            (``mmdet.HighFrequencyAmplifier``), or the built model. Required
            when a loss uses ``amplifier='high_frequency'``. Only the parts
            those losses run (``bbox_head`` or ``roi_head``) are built.
        amplifier_ckpt (str, optional): Its checkpoint (stage 2 output), of
            which the entries of those parts are loaded.
        teacher_ckpt (str, optional): Teacher checkpoint (stage 1 output).
        **kwargs: ``architecture`` (the student), ``teacher``,
            ``distiller`` (a ``DS2D2Distiller``) and the other arguments of
            MMRazor's ``SingleTeacherDistill``.
    """

    def __init__(self,
                 amplifier: Optional[Union[dict, nn.Module]] = None,
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
        self.teacher.requires_grad_(False)
        self.amplifier = self._build_amplifier(amplifier, amplifier_ckpt)
        self._check_feature_shapes()
        amplifiers = dict(teacher=(self.teacher, same_features))
        if self.amplifier is not None:
            amplifiers['high_frequency'] = (
                self.amplifier, self.amplifier.high_frequency_features)
        self.distiller.set_amplifiers(amplifiers)

    def _build_amplifier(
            self, amplifier: Optional[Union[dict, nn.Module]],
            amplifier_ckpt: Optional[str]) -> Optional[HighFrequencyHeads]:
        """The stage-2 amplifier's heads that the losses run, loaded."""
        parts = sorted({
            loss.head_part for _, loss in self.distiller.amplifier_losses()
            if loss.amplifier == 'high_frequency'
        })
        if amplifier is None:
            return None
        if not parts:
            MMLogger.get_current_instance().warning(
                'DS2D2Distill: no distill loss uses '
                "amplifier='high_frequency'; the amplifier is not built")
            return None
        if isinstance(amplifier, nn.Module):
            heads = HighFrequencyHeads.of(amplifier, parts)
            # an initialised model is not initialised again
            heads._is_init = getattr(amplifier, 'is_init', False)
        else:
            heads = HighFrequencyHeads.build(amplifier, parts)
        if amplifier_ckpt:
            load_stage_checkpoint(heads, amplifier_ckpt,
                                  'model.amplifier_ckpt',
                                  'high-frequency amplifier',
                                  own_parts_only=True)
            heads._is_init = True  # keep the loaded weights
        return heads.requires_grad_(False)

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
                any(True for _ in self.distiller.amplifier_losses()):
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

    def train(self, mode: bool = True) -> 'DS2D2Distill':
        """Set the student's mode; teacher and amplifier stay in eval."""
        super().train(mode)
        self.teacher.eval()
        if self.amplifier is not None:
            self.amplifier.eval()
        return self
