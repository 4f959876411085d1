"""An option beside DS2D2: each term pulls on the student's FPN with a
stated share of the task loss's pull, at any image size, feature magnitude
or detector."""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmrazor.registry import MODELS
from torch import Tensor

from ...engine.hooks.gradient_balance_hook import gradient_norm, split_terms
from .ds2d2_distill import DS2D2Distill


def share_scaled(terms: Dict[str, Tensor], task: Tensor,
                 feats: Sequence[Tensor], shares: Dict[str, float]
                 ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Rescale each term so its gradient on ``feats`` is a share of the
    task's.

    ``term_k' = c_k * term_k`` with the constant (no gradient) ``c_k =
    share_k * ||d task / d feats|| / ||d term_k / d feats||``, so that
    ``||d term_k' / d feats|| = share_k * ||d task / d feats||`` exactly
    (norms over all levels together, :func:`gradient_norm`). A term whose
    gradient on the features is 0 (it does not depend on them, or its
    weight is 0) gets ``c_k = 0``. The term's own weight cancels, and so do
    the map size and the feature magnitude it was computed at.

    Args:
        terms (dict[str, Tensor]): Named scalar distillation terms.
        task (Tensor): The detector's own loss, a scalar.
        feats (Sequence[Tensor]): The student's FPN levels they were all
            computed from.
        shares (dict[str, float]): ``share_k`` of every term.

    Returns:
        tuple[dict, dict]: The rescaled terms, and the factors ``c_k``
        (float32 scalars), under the terms' names.
    """
    task_norm = gradient_norm(task, feats)
    scaled, factors = {}, {}
    for name, value in terms.items():
        norm = gradient_norm(value, feats)
        factor = torch.where(
            norm > 0, shares[name] * task_norm /
            norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0)
        factors[name] = factor
        scaled[name] = factor.to(value.dtype) * value
    return scaled, factors


def check_share(name: str, value: float) -> float:
    """A share: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f'ScaleFreeDS2D2Distill: {name} must be a finite '
                         f'number >= 0, got {value!r}')
    return float(value)


@MODELS.register_module()
class ScaleFreeDS2D2Distill(DS2D2Distill):
    """DS2D2 with one weight rule for every detector, size and dataset (an
    option; :class:`DS2D2Distill` with the authors' weights is the paper's
    method).

    The authors' recipes set every loss weight per detector and dataset
    (RetinaNet on DIOR 1e-5 on the explicit terms, Faster R-CNN 0.5), since
    a term's gradient on the student's features depends on the map size
    (the explicit terms are means over every element), on the features'
    magnitude and on the detector's task loss. Here, at every iteration,
    each distillation term is rescaled by a constant so that its gradient
    on the student's FPN levels has the norm ``share`` times that of the
    detector's own loss there (:func:`share_scaled`): every term pulls on
    the student with the same stated fraction of the task's pull, so the
    two streams are balanced, whatever the detector or the image size. The
    losses' own weights cancel (0 still switches a term off).

    Each factor is logged as ``distill.scale_<term>`` (e.g.
    ``distill.scale_low``): the weight the term had at that iteration.
    Costs, per iteration, one backward of the task loss and one of each
    term to the FPN levels (through the student's heads and the amplifier
    heads), besides the training step's own.

    Args:
        share (float): Every term's share of the task loss's gradient norm
            on the student's FPN. Defaults to 1.0.
        shares (dict, optional): Per-term shares that replace ``share``,
            by term name (``loss_low``, ``loss_high``, ``loss_amp_full``,
            ``loss_amp_high``).
        features (str): The student recorder holding the FPN levels.
            Defaults to 'fpn'.
        **kwargs: The arguments of :class:`DS2D2Distill`.
    """

    def __init__(self, share: float = 1.0,
                 shares: Optional[Dict[str, float]] = None,
                 features: str = 'fpn', **kwargs) -> None:
        super().__init__(**kwargs)
        self.share = check_share('share', share)
        self.shares = {name: check_share(f'shares[{name!r}]', value)
                       for name, value in (shares or {}).items()}
        recorders = self.distiller.student_recorders.recorders
        if features not in recorders:
            raise ValueError(
                f'ScaleFreeDS2D2Distill: features={features!r} is not a '
                f'student recorder (there are {sorted(recorders)}): name '
                "the one recording the student's FPN")
        self.features = features

    def loss(self, batch_inputs: Tensor,
             data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """DS2D2's losses, each distillation term rescaled to its share."""
        losses = super().loss(batch_inputs, data_samples)
        terms = split_terms(losses)  # the task, and each distill term
        task = terms.pop('task')
        if not terms:  # distillation stopped
            return losses
        unknown = sorted(set(self.shares) - set(terms))
        if unknown:
            raise KeyError(f'ScaleFreeDS2D2Distill: shares names {unknown}, '
                           f'but the distillation terms are {sorted(terms)}')
        shares = {name: self.shares.get(name, self.share) for name in terms}
        feats = self.distiller.get_record(self.features, from_student=True)
        feats = [feats] if isinstance(feats, Tensor) else list(feats)
        scaled, factors = share_scaled(terms, task, feats, shares)
        for name in terms:
            losses['distill.' + name] = scaled[name]
            losses['distill.' + name.replace('loss', 'scale', 1)] = \
                factors[name]
        return losses
