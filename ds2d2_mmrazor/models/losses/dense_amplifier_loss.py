"""The implicit stream of DS2D2 for dense, anchor-based heads."""
from typing import Callable, Optional, Sequence

import torch
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .amplifier_loss import AmplifierLoss


def _flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """[N, A*K, H, W] per level -> [N, sum(H*W*A), K], in anchor order."""
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels) for m in maps
    ], dim=1)


@MODELS.register_module()
class DenseAmplifierLoss(AmplifierLoss):
    """A frozen dense head amplifies student/teacher feature differences.

    The head (the teacher's own head, or the head of the trained
    high-frequency amplifier) runs on the student's FPN features and on the
    teacher's; the loss compares its predictions (DS2D2, arXiv 2512.04413,
    Sec. 3):

    - cls: ``cls_loss`` (KD quality focal loss) between the logits, times
      the anchors' label weights, summed and divided by ``avg_factor``;
    - reg: both delta sets decoded with the anchors by the head's own bbox
      coder, ``reg_loss`` (GIoU for horizontal boxes, a Gaussian distance for
      rotated ones) between the boxes, weighted by the teacher's max class
      probability, summed and divided by ``avg_factor``. The box distance is
      evaluated in float64: Gaussian distances (MMRotate's ``GDLoss``)
      invert 2x2 covariances whose determinants cancel catastrophically in
      float32 for elongated boxes (NaN for a 2828 x 0.36 px box, which an
      untrained student head decodes); for GIoU it only costs time.

    The same class serves MMDetection's RetinaNet and MMRotate's rotated
    RetinaNet (``FakeRotatedAnchorGenerator`` + ``DeltaXYWHTRBBoxCoder``):
    the head's anchors and coder decide the box type, ``reg_loss`` the
    distance.

    Label weights and ``avg_factor`` are the ones the student head's assigner
    produced for its own task loss in the same iteration (recorded, not
    recomputed); the anchors come from the head's own anchor generator. The
    head is bound by the algorithm (see :meth:`bind`) and is not a
    submodule: it adds no parameters here. The
    teacher-side pass runs under ``no_grad``; gradients reach the student only
    through its features.

    Args:
        amplifier (str): Which head: 'teacher' (full-frequency amplifier) or
            'high_frequency' (the trained amplifier on HF features).
        cls_loss (dict): Config of the classification KD loss, called as
            ``cls_loss(student_logits, teacher_logits, weight, avg_factor)``.
        reg_loss (dict): Config of the box distance, called as
            ``reg_loss(student_boxes, teacher_boxes, weight, avg_factor)``.
        loss_weight (float): Weight of the term. Defaults to 1.0.
    """

    def __init__(self,
                 amplifier: str,
                 cls_loss: dict = dict(
                     type='mmrazor.KDQualityFocalLoss', beta=1.0),
                 reg_loss: dict = dict(
                     type='mmdet.GIoULoss', reduction='mean',
                     loss_weight=1.0),
                 loss_weight: float = 1.0) -> None:
        super().__init__(amplifier, loss_weight)
        self.cls_loss = MODELS.build(cls_loss)
        self.reg_loss = MODELS.build(reg_loss)

    def bind(self, model: nn.Module,
             feature_transform: Optional[Callable] = None) -> None:
        """Attach the frozen detector whose dense head amplifies.

        Args:
            model (nn.Module): The teacher, or the high-frequency amplifier.
                Its ``bbox_head`` must be an MMDetection anchor-based dense
                head with a sigmoid classifier (``AnchorHead`` API:
                ``forward``, ``bbox_coder``, ``cls_out_channels``).
            feature_transform (callable, optional): Applied to each model's
                FPN features before the head (the high-frequency view for
                the HF amplifier). Identity when None.
        """
        head = getattr(model, 'bbox_head', None)
        if head is None or not hasattr(head, 'bbox_coder'):
            raise TypeError(
                f'DenseAmplifierLoss needs a detector with an anchor-based '
                f'dense bbox_head; {type(model).__name__} has '
                f'{type(head).__name__}')
        if not getattr(head, 'use_sigmoid_cls', False):
            raise TypeError(
                f'{type(head).__name__} must classify with sigmoids '
                '(loss_cls use_sigmoid=True) for the KD quality focal loss')
        self._attach(head, feature_transform)

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                label_weights: Sequence[Tensor],
                avg_factor: float) -> Tensor:
        """Compute the weighted amplifier loss (cls + reg).

        Args:
            student_feats (Sequence[Tensor]): Student FPN levels.
            teacher_feats (Sequence[Tensor]): Teacher FPN levels.
            label_weights (Sequence[Tensor]): Per level [N, A_l], from the
                student head's ``get_targets``.
            avg_factor (float): Number of positive anchors in the batch.

        Returns:
            Tensor: Scalar loss.
        """
        head, transform = self._bound(student_feats, teacher_feats)
        num_classes = head.cls_out_channels
        box_dim = head.bbox_coder.encode_size
        with torch.no_grad():
            t_cls, t_reg = head(transform(tuple(teacher_feats)))
            t_cls = _flatten_levels(t_cls, num_classes)
            t_reg = _flatten_levels(t_reg, box_dim)
        s_cls, s_reg = head(transform(tuple(student_feats)))
        s_cls = _flatten_levels(s_cls, num_classes)
        s_reg = _flatten_levels(s_reg, box_dim)
        num_anchors = sum(w.shape[1] for w in label_weights)
        if s_cls.shape[1] != num_anchors:
            raise ValueError(
                f'the head predicts {s_cls.shape[1]} anchors per image but '
                f'the student\'s targets cover {num_anchors}: the amplifier '
                'head must use the student head\'s anchor generator')
        # mmdet divides by avg_factor + eps: an empty batch must not blow up
        avg_factor = max(float(avg_factor), 1.0)

        weight = torch.cat(list(label_weights), dim=1).reshape(-1)
        loss_cls = self.cls_loss(
            s_cls.reshape(-1, num_classes), t_cls.reshape(-1, num_classes),
            weight=weight, avg_factor=avg_factor)

        # The head's own anchors, the same for every image of the batch.
        anchors = cat_boxes(head.prior_generator.grid_priors(
            [f.shape[-2:] for f in student_feats],
            device=student_feats[0].device))
        anchors = cat_boxes([anchors] * s_cls.shape[0])  # [N * A, D]
        with torch.no_grad():
            t_boxes = get_box_tensor(
                head.bbox_coder.decode(anchors, t_reg.reshape(-1, box_dim)))
            box_weight = t_cls.reshape(-1, num_classes).sigmoid().max(-1)[0]
        s_boxes = get_box_tensor(
            head.bbox_coder.decode(anchors, s_reg.reshape(-1, box_dim)))
        loss_reg = self.reg_loss(
            s_boxes.double(), t_boxes.double(), weight=box_weight.double(),
            avg_factor=avg_factor).to(loss_cls.dtype)
        return self.loss_weight * (loss_cls + loss_reg)
