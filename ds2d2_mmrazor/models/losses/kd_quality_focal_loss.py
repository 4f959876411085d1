"""Quality focal loss between student and teacher classification logits."""
from typing import Optional

import torch.nn.functional as F
from mmrazor.registry import MODELS
from torch import Tensor, nn


def kd_quality_focal_loss(student_logits: Tensor, teacher_logits: Tensor,
                          beta: float = 1.0) -> Tensor:
    """Element-wise KD quality focal loss (DS2D2, arXiv 2512.04413, Sec. 3).

    ``BCEWithLogits(z_s, p_t) * |sigmoid(z_s) - p_t| ** beta`` with the
    teacher's probabilities ``p_t = sigmoid(z_t)`` as soft targets. It is 0
    where the student's logits equal the teacher's. The teacher's logits get
    no gradient.

    Args:
        student_logits (Tensor): Student logits, any shape.
        teacher_logits (Tensor): Teacher logits, same shape.
        beta (float): Focusing exponent. Defaults to 1.0.

    Returns:
        Tensor: The loss, same shape as the inputs, in float32 or wider.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f'student logits {tuple(student_logits.shape)} and '
                         f'teacher logits {tuple(teacher_logits.shape)} '
                         'differ in shape')
    z_s = student_logits.float()
    p_t = teacher_logits.detach().float().sigmoid()
    bce = F.binary_cross_entropy_with_logits(z_s, p_t, reduction='none')
    return bce * (z_s.sigmoid() - p_t).abs().pow(beta)


@MODELS.register_module()
class KDQualityFocalLoss(nn.Module):
    """KD quality focal loss, summed and divided by ``avg_factor``.

    Args:
        beta (float): Focusing exponent. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not beta > 0:
            raise ValueError(f'beta must be > 0, got {beta}')
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Compute the loss.

        Args:
            student_logits (Tensor): [M, C] student logits.
            teacher_logits (Tensor): [M, C] teacher logits.
            weight (Tensor, optional): [M] or [M, C] element weights
                (e.g. label weights: 0 for ignored anchors).
            avg_factor (float, optional): Divisor of the sum; the number
                of elements when None.

        Returns:
            Tensor: Scalar loss.
        """
        loss = kd_quality_focal_loss(student_logits, teacher_logits,
                                     self.beta)
        if weight is not None:
            if weight.dim() == loss.dim() - 1:
                weight = weight.unsqueeze(-1)
            loss = loss * weight
        if avg_factor is None:
            avg_factor = loss.numel()
        return self.loss_weight * loss.sum() / max(float(avg_factor), 1.0)
