"""The implicit stream of DS2D2 for two-stage (RoI) heads."""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .amplifier_loss import Amplifier, AmplifierLoss

Loss = Callable[..., Tensor]
#: The box types a RoI head may predict (its ``predict_box_type``).
BOX_TYPES = ('hbox', 'rbox')


def top_class_deltas(student_deltas: Tensor, teacher_deltas: Tensor,
                     teacher_logits: Tensor,
                     box_dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The deltas of the teacher's most probable foreground class.

    With ``p_t = softmax(z_t)`` (background last), ``c*_r = argmax_{c<C}
    p_t[r, c]`` and ``w_r = p_t[r, c*_r]``. A class-agnostic head has one
    delta set per RoI, used for every class.

    Args:
        student_deltas (Tensor): [R, C*D] class-specific or [R, D]
            class-agnostic encoded deltas.
        teacher_deltas (Tensor): Likewise.
        teacher_logits (Tensor): [R, C+1] teacher class logits.
        box_dim (int): D, the size of one encoded box (4 for horizontal
            boxes, 5 for rotated ones).

    Returns:
        tuple[Tensor, Tensor, Tensor]: The student's and the (detached)
        teacher's [R, D] deltas of class ``c*_r``, and the [R] weights
        ``w_r`` (no gradient).
    """
    num_rois, num_classes = teacher_logits.shape[0], \
        teacher_logits.shape[1] - 1
    if teacher_deltas.shape != student_deltas.shape or \
            student_deltas.shape[0] != num_rois:
        raise ValueError(
            f'student deltas {tuple(student_deltas.shape)} and teacher '
            f'deltas {tuple(teacher_deltas.shape)} must both have one row '
            f'per RoI of the {tuple(teacher_logits.shape)} logits')
    if student_deltas.shape[1] not in (box_dim, num_classes * box_dim):
        raise ValueError(
            f'{student_deltas.shape[1]} deltas per RoI fit neither '
            f'class-agnostic ({box_dim}) nor class-specific regression '
            f'({num_classes} classes x {box_dim})')
    with torch.no_grad():
        fg_probs = F.softmax(teacher_logits, dim=1)[:, :num_classes]
        weight, best = fg_probs.max(dim=1)
    if student_deltas.shape[1] == box_dim:
        return student_deltas, teacher_deltas.detach(), weight
    index = torch.arange(num_rois, device=best.device)
    pred = student_deltas.reshape(num_rois, num_classes, box_dim)[index, best]
    target = teacher_deltas.detach().reshape(num_rois, num_classes,
                                             box_dim)[index, best]
    return pred, target, weight


def roi_amplifier_loss(
        student_logits: Tensor, student_deltas: Tensor,
        teacher_logits: Tensor, teacher_deltas: Tensor, box_dim: int,
        cls_loss: Loss, reg_loss: Loss,
        decode: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
    """Compare a RoI bbox head's predictions on student and teacher
    features, for the same RoIs.

    With ``z`` the [R, C+1] class logits (background last), ``d`` the
    encoded deltas of the teacher's most probable foreground class ``c*_r``
    and ``w_r`` its probability (:func:`top_class_deltas`):

    - cls: ``cls_loss(z_s, z_t)`` (the configs: MMRazor's
      ``KLDivergence`` with temperature T and ``reduction='batchmean'``,
      i.e. ``T² (1/R) Σ_r KL(softmax(z_t/T) || softmax(z_s/T))``);
    - reg, without ``decode`` (horizontal boxes, the release's recipe): the
      encoded deltas, ``reg_loss(d_s, d_t, weight=w,
      reduction_override='sum') / (D Σ_r w_r)``; with MMDetection's
      ``L1Loss``: ``Σ_r w_r |d_s − d_t|_1 / (D Σ_r w_r)``;
    - reg, with ``decode`` (rotated boxes): the decoded boxes
      ``b = decode(d)``, ``reg_loss(b_s, b_t, weight=w, avg_factor=Σ_r w_r)``
      in float64, i.e. with a box distance ``dist`` (the configs: MMRotate's
      ``GDLoss``, KLD) ``Σ_r w_r dist(b_s, b_t) / Σ_r w_r``: the same
      ``w``-weighted mean over RoIs as the L1's, of one distance per box
      instead of D per-coordinate ones. Float64 because Gaussian distances
      invert 2x2 covariances whose determinants cancel catastrophically in
      float32 for the elongated boxes an untrained head decodes (as in
      :func:`dense_amplifier_loss`).

    Either reg term is 0 when every ``w_r`` is 0. Teacher-side values get no
    gradient.

    Args:
        student_logits (Tensor): [R, C+1] logits on student features.
        student_deltas (Tensor): [R, C*D] or [R, D] deltas on student
            features.
        teacher_logits (Tensor): [R, C+1] logits on teacher features.
        teacher_deltas (Tensor): Deltas on teacher features.
        box_dim (int): D, the size of one encoded box.
        cls_loss (callable): ``cls_loss(student_logits, teacher_logits)``.
        reg_loss (callable): Without ``decode``: ``reg_loss(pred, target,
            weight=, reduction_override='sum')`` on [R, D] deltas; with it:
            ``reg_loss(pred, target, weight=, avg_factor=)`` on [R, B]
            float64 boxes with [R] weights: a box distance, one value per
            box (as MMRotate's ``GDLoss``, MMDetection's ``GIoULoss``).
        decode (callable, optional): ``decode(deltas) -> boxes``: [R, D]
            deltas of the R RoIs (in their order) to [R, B] boxes, as a
            plain tensor. Defaults to None: compare the deltas.

    Returns:
        Tensor: Scalar ``cls + reg``, in the dtype of the cls term.
    """
    loss_cls = cls_loss(student_logits, teacher_logits)
    pred, target, weight = top_class_deltas(student_deltas, teacher_deltas,
                                            teacher_logits, box_dim)
    if decode is not None:
        with torch.no_grad():
            t_boxes = decode(target).double()
        s_boxes = decode(pred).double()
        weight = weight.double()
        total = weight.sum()
        # all weights 0 -> the weighted sum is exactly 0: divide by 1
        loss_reg = reg_loss(
            s_boxes, t_boxes, weight=weight,
            avg_factor=torch.where(total > 0, total, torch.ones_like(total)))
        return loss_cls + loss_reg.to(loss_cls.dtype)
    total = reg_loss(pred, target, weight=weight[:, None].expand_as(pred),
                     reduction_override='sum')
    denominator = box_dim * weight.sum()
    # all weights 0 -> total is exactly 0: divide by 1 instead of by 0
    return loss_cls + total / torch.where(denominator > 0, denominator,
                                          torch.ones_like(denominator))


@MODELS.register_module()
class RoIAmplifierLoss(AmplifierLoss):
    """A frozen RoI bbox head amplifies student/teacher feature differences.

    The bbox branch of a frozen two-stage detector (the teacher's own
    ``roi_head``, or that of the trained high-frequency amplifier) runs on
    the student's FPN features and on the teacher's, for the same RoIs;
    :func:`roi_amplifier_loss` compares its predictions (DS2D2, arXiv
    2512.04413, Sec. 3). Logits and deltas are compared in float32,
    decoded rotated boxes in float64.

    The box term follows the box type the bbox head predicts (its
    ``predict_box_type``, the attribute by which MMDetection/MMRotate type
    the head's results):

    - ``'hbox'`` (Faster R-CNN): the release's recipe, ``reg_loss`` (L1)
      between the encoded deltas of class ``c*``, ``/ (4 Σ_r w_r)``;
    - ``'rbox'`` (Oriented R-CNN): both delta sets decoded against the
      sampled RoIs with the head's own ``bbox_coder`` (no clipping to the
      image), ``reg_loss`` a rotated box distance between the student's and
      the teacher's boxes (the configs: MMRotate's ``GDLoss``, KLD), in
      float64, weighted by ``w_r``, ``/ Σ_r w_r``: an angle difference of a
      full period decodes to the same box and costs nothing, which an L1 on
      the angle delta would charge.

    The RoIs are the ones the STUDENT's RoI head sampled for its own task
    loss in the same iteration (recorded, not re-sampled): one sample shared
    by both models and both amplifiers. Horizontal RoIs (Faster R-CNN) and
    rotated ones (MMRotate's Oriented R-CNN, whose ``StandardRoIHead`` pools
    them with ``RotatedSingleRoIExtractor``) go through the head's own RoI
    extractor alike. The teacher-side pass runs under ``no_grad``; gradients
    reach the student only through its features.

    Note:
        The authors' release passes the batch factor as the per-RoI weight of
        the KL term, so its cls term is a SUM over the R sampled RoIs. Here
        it is a mean (``reduction='batchmean'``); to keep the release's
        magnitude the configs multiply the KL's ``loss_weight`` (not the L1's,
        whose release normalisation is right) by the number of sampled RoIs
        per batch, R = ``train_cfg.rcnn.sampler.num`` × images per GPU (e.g.
        0.5 × 512 × 2), and say so next to the weight.

    Args:
        amplifier (str): Which head: 'teacher' (full-frequency amplifier) or
            'high_frequency' (the trained amplifier on HF features).
        cls_loss (dict): Config of the class term, called as
            ``cls_loss(student_logits, teacher_logits)``. Defaults to
            MMRazor's ``KLDivergence`` with T = 3, mean over RoIs, weight
            0.5.
        reg_loss (dict): Config of the box term. For horizontal heads the
            delta distance, called as ``reg_loss(pred, target, weight,
            reduction_override='sum')`` (MMDetection's regression losses);
            for rotated heads the box distance, called as ``reg_loss(
            student_boxes, teacher_boxes, weight, avg_factor)`` (e.g.
            MMRotate's ``GDLoss``; ``configs/_base_/
            ds2d2_rotated-roi-head.py``). Defaults to ``L1Loss``, the
            release's horizontal recipe.
        loss_weight (float): Weight of the whole loss. Defaults to 1.0.
    """
    head_part = 'roi_head'

    def __init__(self,
                 amplifier: str,
                 cls_loss: dict = dict(
                     type='mmrazor.KLDivergence', tau=3.0,
                     reduction='batchmean', loss_weight=0.5),
                 reg_loss: dict = dict(type='mmdet.L1Loss', loss_weight=1.0),
                 loss_weight: float = 1.0) -> None:
        super().__init__(amplifier, cls_loss, reg_loss, loss_weight)

    def check_head(self, model: nn.Module) -> None:
        """Raise TypeError unless ``model.roi_head`` is an MMDetection
        ``StandardRoIHead``-like head (``bbox_roi_extractor``, a single
        ``bbox_head``, ``_bbox_forward(x, rois)``) whose bbox head encodes
        boxes with a ``bbox_coder`` and classifies with a softmax over C+1
        logits, background last (as ``Shared2FCBBoxHead`` with
        ``CrossEntropyLoss``)."""
        roi_head = getattr(model, self.head_part, None)
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
        box_type = self.box_type(head)
        if box_type not in BOX_TYPES:
            raise TypeError(
                f'{type(head).__name__} predicts {box_type!r} boxes '
                f'(predict_box_type); RoIAmplifierLoss compares {BOX_TYPES} '
                'boxes (horizontal ones by their deltas, rotated ones '
                'decoded): distil a head that predicts one of them')
        if box_type == 'rbox' and type(self.reg_loss).__name__ in (
                'L1Loss', 'SmoothL1Loss'):
            raise TypeError(
                f'{type(head).__name__} predicts rotated boxes, which '
                'RoIAmplifierLoss decodes and compares with reg_loss: '
                f'{type(self.reg_loss).__name__} is not rotation-aware; use '
                "a Gaussian distance, e.g. dict(type='mmrotate.GDLoss', "
                "loss_type='kld', fun='log1p', tau=1.0, sqrt=False) as "
                'configs/_base_/ds2d2_rotated-roi-head.py does')
        loss_cls = getattr(head, 'loss_cls', None)
        if getattr(loss_cls, 'use_sigmoid', False) or \
                getattr(head, 'custom_cls_channels', False) or \
                not hasattr(head, 'num_classes'):
            raise TypeError(
                f'{type(head).__name__} must classify with a softmax over '
                'num_classes + 1 logits (background last, loss_cls '
                'use_sigmoid=False); found loss_cls '
                f'{type(loss_cls).__name__}')

    @staticmethod
    def rotated_decoder(bbox_head: nn.Module,
                        rois: Tensor) -> Callable[[Tensor], Tensor]:
        """``decode(deltas)``: [R, D] deltas of ``bbox_head`` against the
        [R, 6] ``rois`` (batch index, cx, cy, w, h, angle) to [R, 5] rotated
        boxes, with the head's own coder."""
        priors = rois[:, 1:]

        def decode(deltas: Tensor) -> Tensor:
            boxes = get_box_tensor(bbox_head.bbox_coder.decode(priors,
                                                               deltas))
            if boxes.shape[-1] != 5:
                raise ValueError(
                    f'{type(bbox_head).__name__} predicts rotated boxes but '
                    f'its {type(bbox_head.bbox_coder).__name__} decodes '
                    f'{boxes.shape[-1]} values a box, expected 5 (cx, cy, w, '
                    "h, angle): set the head's predict_box_type to the "
                    'boxes its coder decodes')
            return boxes

        return decode

    @staticmethod
    def box_type(bbox_head: nn.Module) -> str:
        """The box type a bbox head predicts: its ``predict_box_type``
        (MMDetection's ``BBoxHead`` argument, 'hbox' by default; MMRotate's
        rotated RoI heads set 'rbox')."""
        return getattr(bbox_head, 'predict_box_type', 'hbox')

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor], sampling_results: Sequence,
                amplifier: Amplifier) -> Tensor:
        """Run the RoI head on both sides and compare (cls + reg).

        Args:
            student_feats (Sequence[Tensor]): Student FPN levels.
            teacher_feats (Sequence[Tensor]): Teacher FPN levels.
            sampling_results (Sequence[SamplingResult]): What the student's
                RoI head sampled this iteration, one per image (only
                ``priors`` is read).
            amplifier (Amplifier): The frozen ``roi_head`` and the feature
                view it reads (given by the distiller).

        Returns:
            Tensor: Scalar loss.
        """
        self.check_levels(student_feats, teacher_feats)
        roi_head, transform = amplifier
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
        num_classes = roi_head.bbox_head.num_classes
        if t_logits.shape[1] != num_classes + 1:
            raise ValueError(
                f'the bbox head predicts {t_logits.shape[1]} logits, expected '
                f'num_classes + 1 = {num_classes + 1}')
        head = roi_head.bbox_head
        decode = self.rotated_decoder(head, rois) \
            if self.box_type(head) == 'rbox' else None
        return self.loss_weight * roi_amplifier_loss(
            s_out['cls_score'].float(), s_out['bbox_pred'].float(), t_logits,
            t_out['bbox_pred'].float(), head.bbox_coder.encode_size,
            self.cls_loss, self.reg_loss, decode)
