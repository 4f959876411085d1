"""The implicit stream of DS2D2 for dense, anchor-based heads."""
from typing import Callable, Sequence, Tuple

import torch
from mmdet.structures.bbox import BaseBoxes, cat_boxes, get_box_tensor
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .amplifier_loss import Amplifier, AmplifierLoss

Loss = Callable[..., Tensor]


def flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """A dense head's per-level maps as one anchor axis.

    Args:
        maps (Sequence[Tensor]): Per level, [N, A_l * K, H_l, W_l].
        channels (int): K, the values per anchor.

    Returns:
        Tensor: [N, sum_l H_l * W_l * A_l, K], in the order of the head's
        anchor generator (level, row, column, anchor).
    """
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels) for m in maps
    ], dim=1)


def dense_amplifier_loss(student_cls: Tensor, student_reg: Tensor,
                         teacher_cls: Tensor, teacher_reg: Tensor,
                         anchors: Tensor, label_weights: Tensor,
                         avg_factor: float,
                         decode: Callable[[Tensor, Tensor], Tensor],
                         cls_loss: Loss, reg_loss: Loss,
                         reg_on_ignored: bool = True) -> Tensor:
    """Compare a dense head's predictions on student and teacher features.

    With ``z`` the [N, A, C] sigmoid logits, ``d`` the [N, A, D] encoded
    deltas and ``a`` the image's [A, D] anchors (the same for every image):

    - cls: ``cls_loss(z_s, z_t, weight=label_weights, avg_factor)``;
    - reg: ``reg_loss(decode(a, d_s), decode(a, d_t), weight=w, avg_factor)``
      with ``w = max_c sigmoid(z_t)``, the teacher's confidence (0 where
      ``label_weights`` is 0 unless ``reg_on_ignored``). The box
      distance runs in float64: Gaussian distances (MMRotate's ``GDLoss``)
      invert 2x2 covariances whose determinants cancel catastrophically in
      float32 for elongated boxes (NaN for a 2828 x 0.36 px box, which an
      untrained student head decodes); for GIoU it only costs time.

    ``avg_factor`` is floored at 1 (an image without positives must not
    blow the loss up). Teacher-side values get no gradient.

    Args:
        student_cls (Tensor): [N, A, C] logits of the head on student
            features.
        student_reg (Tensor): [N, A, D] deltas on student features.
        teacher_cls (Tensor): [N, A, C] logits on teacher features.
        teacher_reg (Tensor): [N, A, D] deltas on teacher features.
        anchors (Tensor | BaseBoxes): [A, D] anchors of one image.
        label_weights (Tensor): [N, A] weights of the cls term (the
            student head's label weights: 0 for ignored anchors).
        avg_factor (float): Divisor of both terms (the student head's
            number of positive anchors).
        decode (callable): ``decode(anchors, deltas) -> boxes``, both
            [M, D]-like, boxes as a plain tensor.
        cls_loss (callable): ``cls_loss(pred, target, weight=, avg_factor=)``
            on [N * A, C] logits.
        reg_loss (callable): ``reg_loss(pred, target, weight=,
            avg_factor=)`` on [N * A, box] boxes.
        reg_on_ignored (bool): Whether anchors the student's assigner
            ignored (label weight 0) count in the reg term. DS2D2's release
            counts them; CrossKD does not. Defaults to True.

    Returns:
        Tensor: Scalar ``cls + reg``.
    """
    num, num_anchors, num_classes = student_cls.shape
    for name, student, teacher in (('logits', student_cls, teacher_cls),
                                   ('deltas', student_reg, teacher_reg)):
        if teacher.shape != student.shape or \
                student.shape[:2] != (num, num_anchors):
            raise ValueError(
                f'student {name} {tuple(student.shape)} and teacher {name} '
                f'{tuple(teacher.shape)} must both be [N, A, K] for the '
                f'[N, A, C] = {tuple(student_cls.shape)} logits')
    if label_weights.shape != (num, num_anchors):
        raise ValueError(
            f'the head predicts {num_anchors} anchors per image but the '
            f'student\'s targets cover {label_weights.shape[-1]} (label '
            f'weights {tuple(label_weights.shape)} for {num} images): the '
            'amplifier head must use the student head\'s anchor generator')
    avg_factor = max(float(avg_factor), 1.0)
    loss_cls = cls_loss(
        student_cls.reshape(-1, num_classes),
        teacher_cls.reshape(-1, num_classes),
        weight=label_weights.reshape(-1), avg_factor=avg_factor)
    box_dim = student_reg.shape[-1]
    anchors = cat_boxes([anchors] * num)  # [N * A, D]
    with torch.no_grad():
        t_boxes = decode(anchors, teacher_reg.reshape(-1, box_dim))
        box_weight = teacher_cls.reshape(-1, num_classes).sigmoid().max(-1)[0]
        if not reg_on_ignored:
            box_weight = box_weight * (label_weights.reshape(-1) > 0)
    s_boxes = decode(anchors, student_reg.reshape(-1, box_dim))
    loss_reg = reg_loss(
        s_boxes.double(), t_boxes.double(), weight=box_weight.double(),
        avg_factor=avg_factor).to(loss_cls.dtype)
    return loss_cls + loss_reg


@MODELS.register_module()
class DenseAmplifierLoss(AmplifierLoss):
    """A frozen dense head amplifies student/teacher feature differences.

    The head (the teacher's own ``bbox_head``, or that of the trained
    high-frequency amplifier) runs on the student's FPN features and on the
    teacher's; :func:`dense_amplifier_loss` compares its predictions (DS2D2,
    arXiv 2512.04413, Sec. 3). The same class serves MMDetection's RetinaNet
    and MMRotate's rotated RetinaNet: the head's anchor generator and bbox
    coder decide the box type, ``reg_loss`` the distance (GIoU for
    horizontal boxes, a Gaussian distance for rotated ones).

    Label weights and ``avg_factor`` are the ones the student head's
    assigner produced for its own task loss in the same iteration
    (recorded, not recomputed). The teacher-side head pass runs under
    ``no_grad``; gradients reach the student only through its features.

    Args:
        amplifier (str): Which head: 'teacher' (full-frequency amplifier) or
            'high_frequency' (the trained amplifier on HF features).
        cls_loss (dict): Config of the classification KD loss, called as
            ``cls_loss(student_logits, teacher_logits, weight, avg_factor)``.
        reg_loss (dict): Config of the box distance, called as
            ``reg_loss(student_boxes, teacher_boxes, weight, avg_factor)``.
        loss_weight (float): Weight of the term. Defaults to 1.0.
    """
    head_part = 'bbox_head'
    #: Whether anchors the student's assigner ignored count in the reg
    #: term (see :func:`dense_amplifier_loss`).
    reg_on_ignored = True

    def __init__(self,
                 amplifier: str,
                 cls_loss: dict = dict(
                     type='mmrazor.KDQualityFocalLoss', beta=1.0),
                 reg_loss: dict = dict(
                     type='mmdet.GIoULoss', reduction='mean',
                     loss_weight=1.0),
                 loss_weight: float = 1.0) -> None:
        super().__init__(amplifier, cls_loss, reg_loss, loss_weight)

    def check_head(self, model: nn.Module) -> None:
        """Raise TypeError unless ``model.bbox_head`` is an MMDetection
        anchor-based dense head with a sigmoid classifier (``AnchorHead``
        API: ``forward``, ``prior_generator``, ``bbox_coder``,
        ``cls_out_channels``)."""
        head = getattr(model, self.head_part, None)
        if not all(hasattr(head, attr) for attr in
                   ('bbox_coder', 'prior_generator', 'cls_out_channels')):
            raise TypeError(
                f'DenseAmplifierLoss needs a detector with an anchor-based '
                f'dense bbox_head; {type(model).__name__} has '
                f'{type(head).__name__}')
        if not getattr(head, 'use_sigmoid_cls', False):
            raise TypeError(
                f'{type(head).__name__} must classify with sigmoids '
                '(loss_cls use_sigmoid=True) for the KD quality focal loss')

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                label_weights: Sequence[Tensor], avg_factor: float,
                amplifier: Amplifier) -> Tensor:
        """Run the head on both sides and compare (cls + reg).

        Args:
            student_feats (Sequence[Tensor]): Student FPN levels.
            teacher_feats (Sequence[Tensor]): Teacher FPN levels.
            label_weights (Sequence[Tensor]): Per level [N, A_l], from the
                student head's ``get_targets``.
            avg_factor (float): Number of positive anchors in the batch.
            amplifier (Amplifier): The frozen ``bbox_head`` and the feature
                view it reads (given by the distiller).

        Returns:
            Tensor: Scalar loss.
        """
        self.check_levels(student_feats, teacher_feats)
        head, transform = amplifier
        with torch.no_grad():
            t_cls, t_reg = head(transform(tuple(teacher_feats)))
        s_cls, s_reg = head(transform(tuple(student_feats)))
        return self.compare(head, (s_cls, s_reg), (t_cls, t_reg),
                            label_weights, avg_factor)

    def compare(self, head: nn.Module,
                student_preds: Tuple[Sequence[Tensor], Sequence[Tensor]],
                teacher_preds: Tuple[Sequence[Tensor], Sequence[Tensor]],
                label_weights: Sequence[Tensor],
                avg_factor: float) -> Tensor:
        """Compare two sets of the head's per-level outputs.

        Args:
            head (nn.Module): The dense head: its anchor generator and bbox
                coder decode the deltas.
            student_preds (tuple): Per-level logits [N, A_l * C, H_l, W_l]
                and deltas [N, A_l * D, H_l, W_l] of the student side.
            teacher_preds (tuple): The same of the teacher side.
            label_weights (Sequence[Tensor]): Per level [N, A_l].
            avg_factor (float): Number of positive anchors in the batch.

        Returns:
            Tensor: Scalar ``loss_weight * (cls + reg)``.
        """
        (s_cls, s_reg), (t_cls, t_reg) = student_preds, teacher_preds
        num_classes = head.cls_out_channels
        box_dim = head.bbox_coder.encode_size
        anchors = cat_boxes(head.prior_generator.grid_priors(
            [m.shape[-2:] for m in s_cls], device=s_cls[0].device))

        def decode(priors: BaseBoxes, deltas: Tensor) -> Tensor:
            return get_box_tensor(head.bbox_coder.decode(priors, deltas))

        return self.loss_weight * dense_amplifier_loss(
            flatten_levels(s_cls, num_classes),
            flatten_levels(s_reg, box_dim),
            flatten_levels(t_cls, num_classes),
            flatten_levels(t_reg, box_dim), anchors,
            torch.cat(list(label_weights), dim=1), avg_factor, decode,
            self.cls_loss, self.reg_loss, self.reg_on_ignored)
