"""The implicit stream of DS2D2 for two-stage (RoI) heads."""
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .amplifier_loss import AmplifierLoss
from .utils import check_weight


def roi_kl_div_loss(student_logits: Tensor, teacher_logits: Tensor,
                    temperature: float) -> Tensor:
    """Temperature-scaled KL divergence, averaged over RoIs.

    ``T² · mean_r Σ_c p_t (log p_t − log p_s)`` with ``p = softmax(z / T)``
    over all C+1 logits (background included).

    Args:
        student_logits (Tensor): [R, C+1] student class logits.
        teacher_logits (Tensor): [R, C+1] teacher class logits.
        temperature (float): Softmax temperature T.

    Returns:
        Tensor: Scalar loss (0 for R = 0).
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return temperature**2 * kl.sum() / max(kl.numel(), 1)


def roi_delta_l1_loss(student_deltas: Tensor, teacher_deltas: Tensor,
                      teacher_logits: Tensor, box_dim: int = 4) -> Tensor:
    """L1 between the deltas of the teacher's top foreground class.

    With ``p_t = softmax(z_t)`` (background last), ``c*_r = argmax_{c<C}
    p_t[r, c]`` and ``w_r = p_t[r, c*_r]``:
    ``Σ_r w_r · |d_s[r, c*_r] − d_t[r, c*_r]|_1 / (D · Σ_r w_r)``, 0 when
    ``Σ_r w_r = 0``. A class-agnostic head has one delta set per RoI, used
    for every class.

    Args:
        student_deltas (Tensor): [R, C*D] class-specific or [R, D]
            class-agnostic encoded deltas.
        teacher_deltas (Tensor): Likewise.
        teacher_logits (Tensor): [R, C+1] teacher class logits.
        box_dim (int): D, the size of one encoded box (4 for horizontal
            boxes, 5 for rotated ones). Defaults to 4.

    Returns:
        Tensor: Scalar loss.
    """
    num_rois, num_classes = teacher_logits.shape[0], \
        teacher_logits.shape[1] - 1
    if student_deltas.shape[1] not in (box_dim, num_classes * box_dim):
        raise ValueError(
            f'{student_deltas.shape[1]} deltas per RoI fit neither '
            f'class-agnostic ({box_dim}) nor class-specific regression '
            f'({num_classes} classes x {box_dim})')
    with torch.no_grad():
        fg_probs = F.softmax(teacher_logits, dim=1)[:, :num_classes]
        weight, best = fg_probs.max(dim=1)
    if student_deltas.shape[1] == box_dim:
        pred, target = student_deltas, teacher_deltas.detach()
    else:
        index = torch.arange(num_rois, device=best.device)
        target = teacher_deltas.detach().reshape(num_rois, num_classes,
                                                 box_dim)[index, best]
        pred = student_deltas.reshape(num_rois, num_classes,
                                      box_dim)[index, best]
    total = ((pred - target).abs().sum(dim=1) * weight).sum()
    denominator = box_dim * weight.sum()
    # all weights 0 -> total is exactly 0: divide by 1 instead of by 0
    return total / torch.where(denominator > 0, denominator,
                               torch.ones_like(denominator))


@MODELS.register_module()
class RoIAmplifierLoss(AmplifierLoss):
    """A frozen RoI bbox head amplifies student/teacher feature differences.

    The bbox branch of a frozen two-stage detector (the teacher's own RoI
    head, or the RoI head of the trained high-frequency amplifier) runs on
    the student's FPN features and on the teacher's, for the same RoIs; the
    loss compares its predictions (DS2D2, arXiv 2512.04413, Sec. 3). With
    ``z_s, z_t`` the [R, C+1] class logits (background last) and ``d_s,
    d_t`` the [R, D·C] class-specific encoded deltas (D = 4 for horizontal
    boxes, 5 for rotated ones; a class-agnostic head's single [R, D] set
    serves every class):

    - cls: ``T² · (1/R) Σ_r Σ_c softmax(z_t/T)·(log_softmax(z_t/T) −
      log_softmax(z_s/T))``, times ``cls_weight``;
    - reg: ``p_t = softmax(z_t)``, ``c*_r`` the teacher's most probable
      foreground class and ``w_r = p_t[r, c*_r]``;
      ``Σ_r w_r |d_s[r, c*_r] − d_t[r, c*_r]|_1 / (D Σ_r w_r)`` (0 when all
      ``w_r`` are 0), times ``reg_weight``;
    - the loss is ``loss_weight · (cls + reg)``.

    The RoIs are the ones the STUDENT's RoI head sampled for its own task
    loss in the same iteration (recorded, not re-sampled): one sample shared
    by both models and both amplifiers. Horizontal RoIs (Faster R-CNN) and
    rotated ones (MMRotate's Oriented R-CNN, whose ``StandardRoIHead`` pools
    them with ``RotatedSingleRoIExtractor``) go through the head's own RoI
    extractor alike. The head is bound by the algorithm
    (see :meth:`bind`) and is not a submodule: it adds no parameters here.
    The teacher-side pass runs under ``no_grad``; gradients reach the student
    only through its features. Everything is computed in float32.

    Note:
        The authors' release passes the batch factor as the per-RoI weight of
        the KL term, so its cls term is a SUM over the R sampled RoIs. Here it
        is a mean; to keep the release's magnitude the configs multiply
        ``cls_weight`` (not ``reg_weight``, whose release normalisation is
        right) by the number of sampled RoIs per batch, R =
        ``train_cfg.rcnn.sampler.num`` × images per GPU (e.g. 0.5 × 512 × 2),
        and say so next to the weight.

    Args:
        amplifier (str): Which head: 'teacher' (full-frequency amplifier) or
            'high_frequency' (the trained amplifier on HF features).
        temperature (float): Softmax temperature T of the KL term.
            Defaults to 3.0.
        cls_weight (float): Weight of the KL term. Defaults to 0.5.
        reg_weight (float): Weight of the L1 term. Defaults to 1.0.
        loss_weight (float): Weight of the whole loss. Defaults to 1.0.
    """

    def __init__(self,
                 amplifier: str,
                 temperature: float = 3.0,
                 cls_weight: float = 0.5,
                 reg_weight: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__(amplifier, loss_weight)
        owner = type(self).__name__
        self.temperature = check_weight(owner, 'temperature', temperature,
                                        positive=True)
        self.cls_weight = check_weight(owner, 'cls_weight', cls_weight)
        self.reg_weight = check_weight(owner, 'reg_weight', reg_weight)

    def bind(self, model: nn.Module,
             feature_transform: Optional[Callable] = None) -> None:
        """Attach the frozen detector whose RoI bbox branch amplifies.

        Args:
            model (nn.Module): The teacher, or the high-frequency amplifier.
                Its ``roi_head`` must be an MMDetection ``StandardRoIHead``-
                like head (``bbox_roi_extractor``, ``bbox_head``,
                ``_bbox_forward(x, rois)``) whose bbox head encodes boxes
                with a ``bbox_coder`` and classifies with a softmax over
                C+1 logits, background last (as ``Shared2FCBBoxHead`` with
                ``CrossEntropyLoss``).
            feature_transform (callable, optional): Applied to each model's
                FPN features before the head (the high-frequency view for
                the HF amplifier). Identity when None.
        """
        roi_head = getattr(model, 'roi_head', None)
        if not all(hasattr(roi_head, attr) for attr in
                   ('bbox_roi_extractor', 'bbox_head', '_bbox_forward')) \
                or isinstance(roi_head.bbox_head, nn.ModuleList):
            raise TypeError(
                'RoIAmplifierLoss needs a two-stage detector with a '
                'StandardRoIHead-like roi_head (bbox_roi_extractor, a single '
                f'bbox_head, _bbox_forward); {type(model).__name__} has '
                f'roi_head {type(roi_head).__name__}')
        head = roi_head.bbox_head
        if not hasattr(getattr(head, 'bbox_coder', None), 'encode_size'):
            raise TypeError(
                f'{type(head).__name__} has no bbox_coder with an '
                'encode_size: RoIAmplifierLoss compares encoded deltas')
        loss_cls = getattr(head, 'loss_cls', None)
        if getattr(loss_cls, 'use_sigmoid', False) or \
                getattr(head, 'custom_cls_channels', False) or \
                not hasattr(head, 'num_classes'):
            raise TypeError(
                f'{type(head).__name__} must classify with a softmax over '
                'num_classes + 1 logits (background last, loss_cls '
                'use_sigmoid=False); found loss_cls '
                f'{type(loss_cls).__name__}')
        self._attach(roi_head, feature_transform)

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                sampling_results: Sequence) -> Tensor:
        """Compute the weighted amplifier loss (cls + reg).

        Args:
            student_feats (Sequence[Tensor]): Student FPN levels.
            teacher_feats (Sequence[Tensor]): Teacher FPN levels.
            sampling_results (Sequence[SamplingResult]): What the student's
                RoI head sampled this iteration, one per image (only
                ``priors`` is read).

        Returns:
            Tensor: Scalar loss.
        """
        roi_head, transform = self._bound(student_feats, teacher_feats)
        rois = bbox2roi([get_box_tensor(res.priors).detach()
                         for res in sampling_results])
        if rois.shape[0] == 0:
            # nothing sampled: a zero that keeps the student's graph
            return sum(f.sum() for f in student_feats) * 0.0
        with torch.no_grad():
            t_out = roi_head._bbox_forward(transform(tuple(teacher_feats)),
                                           rois)
        s_out = roi_head._bbox_forward(transform(tuple(student_feats)), rois)
        t_logits = t_out['cls_score'].float()
        s_logits = s_out['cls_score'].float()
        num_classes = roi_head.bbox_head.num_classes
        if t_logits.shape[1] != num_classes + 1:
            raise ValueError(
                f'the bbox head predicts {t_logits.shape[1]} logits, expected '
                f'num_classes + 1 = {num_classes + 1}')

        loss_cls = roi_kl_div_loss(s_logits, t_logits, self.temperature)
        loss_reg = roi_delta_l1_loss(
            s_out['bbox_pred'].float(), t_out['bbox_pred'].float(), t_logits,
            roi_head.bbox_head.bbox_coder.encode_size)
        return self.loss_weight * (self.cls_weight * loss_cls +
                                   self.reg_weight * loss_reg)
