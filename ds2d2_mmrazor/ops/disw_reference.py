"""DISW written as its definition: a loop over images and boxes.

The slow reference of :func:`~ds2d2_mmrazor.ops.disw_weights` for tests and
the benchmark, not for training (one Python iteration per box). Each box
adds ``1 / A`` to the ``A`` grid cells it covers; see ``docs/disw.md`` for
the cell rules.
"""
import math
from typing import Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import BaseBoxes
from torch import Tensor


def disw_reference(boxes: Sequence[Union[Tensor, BaseBoxes]],
                   grid_hw: Tuple[int, int],
                   input_hw: Tuple[float, float]) -> Tensor:
    """DISW map ``1 + sum of 1 / A_k``, box by box (slow, for tests).

    Args:
        boxes (Sequence[Tensor | BaseBoxes]): Per image, [K_i, 4]
            ``(x1, y1, x2, y2)`` or [K_i, 5] ``(cx, cy, w, h, theta)``
            boxes in padded-input pixels.
        grid_hw (tuple[int, int]): Wavelet grid size (h, w).
        input_hw (tuple[float, float]): Padded batch input size (H, W).

    Returns:
        Tensor: [N, 1, h, w] float32 map on the boxes' device, summed in
        float64.
    """
    h, w = grid_hw
    device = boxes[0].device if len(boxes) else torch.device('cpu')
    mass = torch.zeros(len(boxes), 1, h, w, dtype=torch.float64,
                       device=device)
    for n, image_boxes in enumerate(boxes):
        if isinstance(image_boxes, BaseBoxes):
            image_boxes = image_boxes.tensor
        add_box = _add_rotated if image_boxes.shape[1] == 5 else \
            _add_horizontal
        for box in image_boxes.double().tolist():
            add_box(mass[n, 0], box, input_hw)
    return (1 + mass).float()


def _add_horizontal(plane: Tensor, box: Sequence[float],
                    input_hw: Tuple[float, float]) -> None:
    """Rows ``floor(y1 h / H) .. ceil(y2 h / H)``, columns likewise,
    inclusive and clipped to the grid."""
    (h, w), (in_h, in_w) = plane.shape, input_hw
    x1, y1, x2, y2 = box
    r0 = max(math.floor(y1 * h / in_h), 0)
    r1 = min(math.ceil(y2 * h / in_h), h - 1)
    c0 = max(math.floor(x1 * w / in_w), 0)
    c1 = min(math.ceil(x2 * w / in_w), w - 1)
    if r0 <= r1 and c0 <= c1:
        plane[r0:r1 + 1, c0:c1 + 1] += 1 / ((r1 - r0 + 1) * (c1 - c0 + 1))


def _add_rotated(plane: Tensor, box: Sequence[float],
                 input_hw: Tuple[float, float]) -> None:
    """The cells whose centre lies in the rotated rectangle (edges
    included); if none, the cell holding the box centre, if on the grid."""
    (h, w), (in_h, in_w) = plane.shape, input_hw
    cx, cy, bw, bh, theta = box
    kw = dict(dtype=torch.float64, device=plane.device)
    dy = (torch.arange(h, **kw)[:, None] + 0.5) * in_h / h - cy
    dx = (torch.arange(w, **kw)[None] + 0.5) * in_w / w - cx
    cos, sin = math.cos(theta), math.sin(theta)
    along_w = dx * cos + dy * sin
    along_h = dy * cos - dx * sin
    inside = (along_w.abs() <= bw / 2) & (along_h.abs() <= bh / 2)
    area = int(inside.sum())
    if area:
        plane[inside] += 1 / area
        return
    row, col = math.floor(cy * h / in_h), math.floor(cx * w / in_w)
    if 0 <= row < h and 0 <= col < w:
        plane[row, col] += 1
