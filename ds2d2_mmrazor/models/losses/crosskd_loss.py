"""CrossKD: the teacher's head run on the student's head features."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .amplifier_loss import Amplifier
from .dense_amplifier_loss import DenseAmplifierLoss

#: The parts of a RetinaNet-like head (mmdet's ``RetinaHead``, mmrotate's
#: ``RotatedRetinaHead``) that CrossKD runs.
HEAD_PARTS = ('cls_convs', 'reg_convs', 'retina_cls', 'retina_reg')
#: The forward arguments of :class:`CrossKDLoss` that take the student's
#: recorded head features (for ``reused_head_idx > 0``).
RECORDED_INPUTS = ('student_cls_feats', 'student_reg_feats')


def align_scale(student: Tensor, teacher: Tensor,
                eps: float = 1e-6) -> Tensor:
    """Give the student's features the teacher's per-channel statistics.

    CrossKD's alignment (Wang et al., CVPR 2024, arXiv 2306.11369): each
    channel of the student's features is standardised over N, H and W,
    then given the mean and standard deviation of the same channel of the
    teacher's features,
    ``(s - mean(s)) / (std(s) + eps) * std(t) + mean(t)``, with unbiased
    standard deviations (torch's default, as CrossKD's code). Gradients
    flow through the student's statistics too; the teacher's are constants.

    Args:
        student (Tensor): [N, C, H, W] student features.
        teacher (Tensor): [N', C, H', W'] teacher features.
        eps (float): Added to the student's standard deviation. Defaults to
            1e-6, CrossKD's.

    Returns:
        Tensor: [N, C, H, W], the student's features aligned.
    """
    if student.dim() != 4 or teacher.dim() != 4 or \
            student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'align_scale compares [N, C, H, W] features channel by channel; '
            f'found student {tuple(student.shape)}, teacher '
            f'{tuple(teacher.shape)}: give both heads the same feat_channels')
    for name, x in (('student', student), ('teacher', teacher)):
        if x.numel() // x.shape[1] < 2:
            raise ValueError(
                f'align_scale needs at least 2 values per channel for an '
                f'unbiased std; the {name} features are {tuple(x.shape)}: '
                'use a larger batch or image, or align_scale=False')
    dims = (0, 2, 3)
    teacher = teacher.detach()
    standard = (student - student.mean(dims, keepdim=True)) / (
        student.std(dims, keepdim=True) + eps)
    return standard * teacher.std(dims, keepdim=True) + \
        teacher.mean(dims, keepdim=True)


def head_features(head: nn.Module, feats: Tensor,
                  index: int) -> Tuple[Tensor, Tensor]:
    """Where CrossKD cuts a RetinaNet-like head: the input of its conv
    ``index`` in the cls and in the reg branch.

    Args:
        head (nn.Module): A head with ``cls_convs`` and ``reg_convs``.
        feats (Tensor): [N, C, H, W], one FPN level.
        index (int): 0 for the FPN level itself; k > 0 for the output of
            conv k - 1 of each branch (its ``ConvModule``: conv, norm if
            any, activation).

    Returns:
        tuple[Tensor, Tensor]: The cls and reg branch features.
    """
    cls_feat = reg_feat = feats
    for conv in head.cls_convs[:index]:
        cls_feat = conv(cls_feat)
    for conv in head.reg_convs[:index]:
        reg_feat = conv(reg_feat)
    return cls_feat, reg_feat


def head_from(head: nn.Module, cls_feat: Tensor, reg_feat: Tensor,
              index: int) -> Tuple[Tensor, Tensor]:
    """The rest of a RetinaNet-like head from conv ``index`` on: its convs
    ``index, ...`` of each branch, then its predictors. With
    :func:`head_features` at the same index, the head's ``forward_single``.

    Args:
        head (nn.Module): A head with :data:`HEAD_PARTS`.
        cls_feat (Tensor): [N, C, H, W] input of cls conv ``index``.
        reg_feat (Tensor): [N, C, H, W] input of reg conv ``index``.
        index (int): The first conv to run, 0 to ``len(head.cls_convs)``.

    Returns:
        tuple[Tensor, Tensor]: Logits [N, A * C_cls, H, W] and deltas
        [N, A * D, H, W].
    """
    for conv in head.cls_convs[index:]:
        cls_feat = conv(cls_feat)
    for conv in head.reg_convs[index:]:
        reg_feat = conv(reg_feat)
    return head.retina_cls(cls_feat), head.retina_reg(reg_feat)


def cross_head(head: nn.Module, student: Tuple[Tensor, Tensor],
               teacher: Tuple[Tensor, Tensor], index: int,
               align: bool = True) -> Tuple[Tensor, Tensor]:
    """CrossKD's cross-head predictions of one level: the student's cls
    and reg features at ``index`` (see :func:`head_features`), aligned to
    the teacher's (:func:`align_scale`) and, for ``index > 0``, passed
    through a ReLU, run through the teacher head from conv ``index`` on
    (:func:`head_from`).

    Args:
        head (nn.Module): The teacher's head.
        student (tuple[Tensor, Tensor]): The student's cls and reg features
            at ``index``.
        teacher (tuple[Tensor, Tensor]): The teacher's, for the statistics.
        index (int): Where the teacher head takes over.
        align (bool): Whether to align the statistics. Defaults to True.

    Returns:
        tuple[Tensor, Tensor]: Logits and deltas, as :func:`head_from`.
    """
    feats = [align_scale(s, t) if align else s
             for s, t in zip(student, teacher)]
    if index > 0:
        feats = [F.relu(f) for f in feats]
    return head_from(head, *feats, index)


@MODELS.register_module()
class CrossKDLoss(DenseAmplifierLoss):
    """CrossKD: cross-head knowledge distillation (Wang et al., CVPR 2024,
    arXiv 2306.11369), for RetinaNet-like heads.

    The student's head features at ``reused_head_idx`` go through the rest
    of the frozen teacher head; the outputs of this cross head are pulled
    towards the teacher's own predictions. With ``k = reused_head_idx``:

    - k = 0: the student's FPN levels through the teacher's whole head;
    - k > 0: the output of the student head's conv k - 1 of each branch
      (recorded, :data:`RECORDED_INPUTS`) through the teacher's convs k, ...
      and its predictors. CrossKD's RetinaNet recipe: k = 3 of 4 convs,
      the teacher's last conv and predictors.

    Before that the student's features get the teacher's per-channel mean
    and std at the same point (:func:`align_scale`, at k = 0 too), and a
    ReLU for k > 0. The comparison is :class:`DenseAmplifierLoss`'s on all
    anchors: KD quality focal loss (beta 1) with the student head's label
    weights, GIoU between decoded boxes weighted by the teacher's top
    class probability, both summed over the levels and divided by the
    student head's ``avg_factor``; unlike DS2D2's, the box weight is 0 on
    anchors the student's assigner ignored (label weight 0), as CrossKD's.

    Which features: CrossKD's code keeps the output of conv k - 1 before
    its activation, but ``ConvModule``'s ReLU is in place, so the kept
    tensor holds the activated features when they are aligned. Both sides
    therefore use the activated output of ``cls_convs[k - 1]`` and
    ``reg_convs[k - 1]``; the student's are recorded with MMRazor's
    ``ModuleOutputs`` on ``bbox_head.cls_convs.{k-1}`` and
    ``bbox_head.reg_convs.{k-1}`` (one record per FPN level, all passed
    with ``record_idx=None``), the teacher's are computed here from its FPN
    levels. The teacher side runs under ``no_grad``; gradients reach the
    student through its FPN levels and head features.

    Args:
        reused_head_idx (int): k, 0 to the head's ``stacked_convs``.
            Defaults to 3 (CrossKD's RetinaNet recipe).
        align_scale (bool): Whether to align the student's features to the
            teacher's statistics. Defaults to True.
        cls_loss (dict): Config of the classification KD loss. Defaults to
            CrossKD's: KD quality focal loss, beta 1, weight 1.
        reg_loss (dict): Config of the box distance. Defaults to CrossKD's:
            GIoU, weight 1.
        loss_weight (float): Weight of the whole term. Defaults to 1.0.
    """
    reg_on_ignored = False

    def __init__(self,
                 reused_head_idx: int = 3,
                 align_scale: bool = True,
                 cls_loss: dict = dict(
                     type='mmrazor.KDQualityFocalLoss', beta=1.0,
                     loss_weight=1.0),
                 reg_loss: dict = dict(
                     type='mmdet.GIoULoss', reduction='mean',
                     loss_weight=1.0),
                 loss_weight: float = 1.0) -> None:
        if isinstance(reused_head_idx, bool) or \
                not isinstance(reused_head_idx, int) or reused_head_idx < 0:
            raise ValueError(
                f'reused_head_idx must be an int >= 0 (0: the teacher\'s '
                f'whole head), got {reused_head_idx!r}')
        super().__init__('teacher', cls_loss, reg_loss, loss_weight)
        self.reused_head_idx = reused_head_idx
        self.align_scale = bool(align_scale)

    def check_head(self, model: nn.Module) -> None:
        """Raise TypeError unless ``model.bbox_head`` is a RetinaNet-like
        head (:data:`HEAD_PARTS`, sigmoid classifier), ValueError unless it
        has at least ``reused_head_idx`` stacked convs."""
        super().check_head(model)
        head = getattr(model, self.head_part)
        missing = [p for p in HEAD_PARTS if not hasattr(head, p)]
        if missing:
            raise TypeError(
                'CrossKDLoss runs a RetinaNet-like head '
                f'({", ".join(HEAD_PARTS)}); {type(head).__name__} has no '
                f'{", ".join(missing)}')
        convs = len(head.cls_convs)
        if self.reused_head_idx > convs:
            raise ValueError(
                f'reused_head_idx={self.reused_head_idx} but the teacher '
                f'head has {convs} stacked convs: choose 0 to {convs} '
                '(CrossKD\'s RetinaNet recipe: 3 of 4, the last conv)')

    def forward(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                label_weights: Sequence[Tensor],
                avg_factor: float,
                amplifier: Amplifier,
                student_cls_feats: Optional[Sequence[Tensor]] = None,
                student_reg_feats: Optional[Sequence[Tensor]] = None
                ) -> Tensor:
        """Run the cross head and the teacher's head; compare.

        Args:
            student_feats (Sequence[Tensor]): Student FPN levels.
            teacher_feats (Sequence[Tensor]): Teacher FPN levels.
            label_weights (Sequence[Tensor]): Per level [N, A_l], from the
                student head's ``get_targets``.
            avg_factor (float): Number of positive anchors in the batch.
            amplifier (Amplifier): The teacher's frozen ``bbox_head`` (given
                by the distiller).
            student_cls_feats (Sequence[Tensor], optional): Per level, the
                output of the student's ``cls_convs[k - 1]``; for k > 0.
            student_reg_feats (Sequence[Tensor], optional): The same of
                ``reg_convs[k - 1]``.

        Returns:
            Tensor: Scalar loss.
        """
        self.check_levels(student_feats, teacher_feats)
        head, index = amplifier.head, self.reused_head_idx
        with torch.no_grad():
            held = [head_features(head, t, index) for t in teacher_feats]
            teacher_preds = [head_from(head, *h, index) for h in held]
        if index == 0:
            student = [(s, s) for s in student_feats]
        else:
            student = list(zip(*self._recorded(
                student_cls_feats, student_reg_feats, held)))
        reused = [cross_head(head, s, t, index, self.align_scale)
                  for s, t in zip(student, held)]
        return self.compare(head, tuple(zip(*reused)),
                            tuple(zip(*teacher_preds)), label_weights,
                            avg_factor)

    def _recorded(self, cls_feats: Optional[Sequence[Tensor]],
                  reg_feats: Optional[Sequence[Tensor]],
                  held: Sequence[Tuple[Tensor, Tensor]]
                  ) -> Tuple[Sequence[Tensor], Sequence[Tensor]]:
        """The student's recorded head features, checked against the
        teacher's at the same point."""
        k = self.reused_head_idx
        for branch, (name, feats) in enumerate(zip(
                RECORDED_INPUTS, (cls_feats, reg_feats))):
            source = f'bbox_head.{("cls", "reg")[branch]}_convs.{k - 1}'
            if feats is None or isinstance(feats, Tensor) or \
                    len(feats) != len(held):
                found = 'nothing' if feats is None else \
                    'one tensor' if isinstance(feats, Tensor) else \
                    f'{len(feats)} records'
                raise ValueError(
                    f'CrossKDLoss(reused_head_idx={k}) needs {name}, one '
                    f'record per FPN level ({len(held)}); found {found}: '
                    f'record the student\'s {source} with ModuleOutputs and '
                    f'map it with record_idx=None')
            for level, (s, t) in enumerate(zip(feats, held)):
                if s.shape != t[branch].shape:
                    raise ValueError(
                        f'{name}[{level}] is {tuple(s.shape)} but the '
                        f'teacher\'s {source} gives {tuple(t[branch].shape)}'
                        f': record the student\'s {source}, and give both '
                        'heads the same feat_channels')
        return cls_feats, reg_feats
