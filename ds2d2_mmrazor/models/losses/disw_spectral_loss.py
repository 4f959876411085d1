"""The explicit stream of DS2D2: DISW-weighted feature imitation in the
wavelet domain."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import get_box_tensor
from mmrazor.registry import MODELS
from torch import Tensor, nn

from ...ops import disw_pyramid
from .utils import check_weight

Bands = Tuple[Tensor, Tensor]  # (low [N,C,h,w], high [N,C,3,h,w])


def disw_spectral_loss(student: Bands, teacher: Bands,
                       weight: Tensor) -> Tuple[Tensor, Tensor]:
    """DISW-weighted squared error of the low and high bands of one level.

    ``L_low = mean(W * (L_s - L_t)^2)`` and ``L_high = mean(W * (Hb_s -
    Hb_t)^2)``, plain means over all elements (DS2D2, arXiv 2512.04413,
    Sec. 2). The same weight map W serves every channel and all three high
    bands. Computed in float32; the teacher's bands get no gradient.

    Args:
        student (tuple[Tensor, Tensor]): Student ``(low [N,C,h,w],
            high [N,C,3,h,w])``.
        teacher (tuple[Tensor, Tensor]): Teacher bands, same shapes.
        weight (Tensor): DISW map [N, 1, h, w].

    Returns:
        tuple[Tensor, Tensor]: Scalar ``(loss_low, loss_high)``.
    """
    (s_low, s_high), (t_low, t_high) = student, teacher
    if s_low.shape != t_low.shape or s_high.shape != t_high.shape:
        raise ValueError(
            f'student bands {tuple(s_low.shape)} / {tuple(s_high.shape)} do '
            f'not match teacher bands {tuple(t_low.shape)} / '
            f'{tuple(t_high.shape)}: set the WaveletConnector adapter\'s '
            'out_channels to the teacher\'s FPN channels')
    if weight.shape != (s_low.shape[0], 1) + s_low.shape[2:]:
        raise ValueError(f'DISW map {tuple(weight.shape)} does not match '
                         f'the band grid {tuple(s_low.shape)}')
    weight = weight.float()
    low = (weight * (s_low.float() - t_low.detach().float())**2).mean()
    high = (weight.unsqueeze(2) *
            (s_high.float() - t_high.detach().float())**2).mean()
    return low, high


def gt_boxes_and_input_shape(
        data_samples: Sequence) -> Tuple[List[Tensor], Tuple[int, int]]:
    """Ground-truth boxes per image and the padded batch input (H, W)."""
    if not data_samples:
        raise ValueError(
            'DISW needs the batch data samples, got none: map them in '
            'loss_forward_mappings, data_samples=dict(recorder=\'batch\', '
            'from_student=True, data_idx=1), with the student recorder '
            "batch=dict(type='MethodInputs', "
            "source='mmdet.models.detectors.BaseDetector.forward')")
    boxes = [get_box_tensor(s.gt_instances.bboxes) for s in data_samples]
    input_hw = tuple(data_samples[0].metainfo['batch_input_shape'])
    return boxes, input_hw


@MODELS.register_module()
class DISWSpectralLoss(nn.Module):
    """Explicit DS2D2 stream: DISW-weighted low- and high-band imitation.

    Sums :func:`disw_spectral_loss` over FPN levels. The inputs are the
    outputs of :class:`WaveletConnector`: the adapted student levels and the
    teacher levels, each split into wavelet bands. The DISW map of a level is
    built on its wavelet grid from the batch's ground-truth boxes, all levels
    in one :func:`~ds2d2_mmrazor.ops.disw_pyramid` call.

    Args:
        low_weight (float): Weight of the low-band term. Defaults to 1e-5
            (RetinaNet on DIOR).
        high_weight (float): Weight of the high-band term. Defaults to 1e-5.
        disw (bool): Weigh the squared errors by DISW. False gives W = 1
            everywhere: the paper's ablation "without DISW", not the
            method. Defaults to True.
    """

    def __init__(self, low_weight: float = 1e-5, high_weight: float = 1e-5,
                 disw: bool = True) -> None:
        super().__init__()
        self.disw = disw
        self.low_weight = check_weight('DISWSpectralLoss', 'low_weight',
                                       low_weight)
        self.high_weight = check_weight('DISWSpectralLoss', 'high_weight',
                                        high_weight)

    def forward(self, student: Sequence[Bands], teacher: Sequence[Bands],
                data_samples: Optional[Sequence] = None) -> Dict[str, Tensor]:
        """Compute both terms.

        Args:
            student (Sequence[tuple]): Per level, the adapted student's
                ``(low, high)`` bands.
            teacher (Sequence[tuple]): Per level, the teacher's bands.
            data_samples (Sequence[DetDataSample]): The batch, with
                ``gt_instances.bboxes`` and ``batch_input_shape`` (recorded
                from the student's ``forward``); not read when
                ``disw=False``.

        Returns:
            dict: ``loss_low`` and ``loss_high``, weighted.
        """
        if len(student) != len(teacher):
            raise ValueError(f'student has {len(student)} FPN levels, the '
                             f'teacher {len(teacher)}')
        low = high = student[0][0].new_zeros((), dtype=torch.float32)
        grids = [tuple(s_bands[0].shape[-2:]) for s_bands in student]
        if self.disw:  # all levels' maps in one pass
            boxes, input_hw = gt_boxes_and_input_shape(data_samples)
            weights = disw_pyramid(boxes, grids, input_hw)
        else:
            weights = [low.new_ones(len(student[0][0]), 1, *grid)
                       for grid in grids]
        for s_bands, t_bands, weight in zip(student, teacher, weights):
            level_low, level_high = disw_spectral_loss(s_bands, t_bands,
                                                       weight)
            low = low + level_low
            high = high + level_high
        return dict(loss_low=self.low_weight * low,
                    loss_high=self.high_weight * high)
