"""Density-Independent Scale Weight (DISW) over horizontal or rotated boxes.

The weight map of DS2D2's explicit stream (arXiv 2512.04413): every
ground-truth box spreads a total mass of 1 evenly over the wavelet-grid
cells it covers. Vectorised in four steps, all FPN levels at once:

1. check the inputs and gather the boxes of the batch;
2. turn each box into cell rectangles per level (a horizontal box: one; a
   rotated box: one single-row run of cells per grid row, or the cell
   holding its centre), each carrying ``1 / A``;
3. scatter the rectangles' corners into 2-D difference arrays;
4. sum the difference arrays up with two cumulative sums.

Cell rules and numerics: ``docs/disw.md``. The slow definition,
:func:`~ds2d2_mmrazor.ops.disw_reference`, is what the tests compare with.
"""
import math
from numbers import Integral, Real
from typing import List, Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import BaseBoxes
from torch import Tensor

BOX_LAYOUTS = {4: '(x1, y1, x2, y2)', 5: '(cx, cy, w, h, theta)'}
# float64: exact for the scaled coordinates of float16 / float32 boxes, and
# 1 / A stays representable for any grid (docs/disw.md).
_ACC = torch.float64


# ---------------------------------------------------------------------------
# 1. inputs


def _check_hw(name: str, hw: Tuple, integer: bool) -> None:
    """Raise ValueError unless ``hw`` is two positive (integer) sizes."""
    kind = Integral if integer else Real
    if (not isinstance(hw, Sequence) or len(hw) != 2
            or not all(isinstance(v, kind) and v > 0 for v in hw)):
        what = 'ints' if integer else 'numbers'
        raise ValueError(
            f'{name} must be two positive {what} (height, width), got {hw!r}')


def _box_tensors(boxes: Sequence[Union[Tensor, BaseBoxes]]) -> List[Tensor]:
    """Plain [K, 4] or [K, 5] tensors, one box layout for the whole batch."""
    tensors = [b.tensor if isinstance(b, BaseBoxes) else b for b in boxes]
    for i, b in enumerate(tensors):
        if not isinstance(b, Tensor) or b.dim() != 2 or \
                b.shape[1] not in BOX_LAYOUTS:
            found = tuple(b.shape) if isinstance(b, Tensor) else type(b)
            quad = isinstance(b, Tensor) and b.dim() == 2 and \
                b.shape[1] == 8
            fix = ("quadrilaterals: convert them to rotated boxes in the "
                   "pipeline with dict(type='ConvertBoxType', "
                   "box_type_mapping=dict(gt_bboxes='rbox'))" if quad else
                   'pass an empty [0, 4] tensor for an image without boxes')
            raise ValueError(
                f'boxes[{i}] must be a [K, 4] tensor {BOX_LAYOUTS[4]} or a '
                f'[K, 5] tensor {BOX_LAYOUTS[5]}, got {found}; {fix}')
    dims = {b.shape[1] for b in tensors if len(b)}
    if len(dims) > 1:
        raise ValueError('boxes mix horizontal [K, 4] and rotated [K, 5] '
                         'boxes in one batch; use one box type')
    # images without boxes take the batch's layout, whatever theirs
    dim = dims.pop() if dims else 4
    return [b if b.shape[1] == dim else b.reshape(0, dim) for b in tensors]


class _Grids:
    """The levels' grids and the difference array that holds them.

    The array is [L, N, 1, rows, cols], ``rows`` / ``cols`` one more than
    the largest grid: level l of image n is the [h_l + 1, w_l + 1] corner of
    block ``l * N + n``. Per-level values are float64 [L, 1] columns that
    broadcast against [K] box coordinates: ``h``, ``w``, ``first_block``
    (l * N), and ``size`` / ``input_size``, [axis x / y, L, 1]: the grid
    (w, h) and the input (W, H).
    """

    def __init__(self, grid_hws: Sequence[Tuple[int, int]],
                 input_hw: Tuple[float, float], n: int,
                 device: torch.device) -> None:
        self.hws = [tuple(hw) for hw in grid_hws]
        self.input_hw = input_hw
        self.shape = (len(self.hws), n, 1,
                      max((h for h, _ in self.hws), default=0) + 1,
                      max((w for _, w in self.hws), default=0) + 1)
        (in_h, in_w), num_levels = input_hw, len(self.hws)
        table = torch.tensor(
            [[w for _, w in self.hws], [h for h, _ in self.hws],
             [in_w] * num_levels, [in_h] * num_levels,
             [level * n for level in range(num_levels)]],
            dtype=_ACC, device=device)[..., None]
        self.size, self.input_size = table[0:2], table[2:4]
        self.w, self.h, self.first_block = table[0], table[1], table[4]

    def zeros(self) -> Tensor:
        return torch.zeros(self.shape, dtype=_ACC,
                           device=self.size.device)


def _gather_boxes(tensors: List[Tensor],
                  device: torch.device) -> Tuple[Tensor, Tensor]:
    """The boxes of all images as [4 | 5, K] float64 coordinates (one
    contiguous row per coordinate: fast elementwise ops) and the image of
    each box."""
    counts = [len(b) for b in tensors]
    # output_size given: no device sync to read the counts back
    img = torch.repeat_interleave(
        torch.tensor(counts, device=device), output_size=sum(counts))
    return torch.cat([b.T for b in tensors], dim=1).to(_ACC), img


# ---------------------------------------------------------------------------
# 2. cell rectangles
#
# A rectangle is (block, rows, cols, value), float64 tensors: rows and cols
# are the half-open [start, stop) cell ranges, stacked on dim 0 ([2, ...])
# and clipped to [0, h] / [0, w]; value is 1 / A, or 0 to skip it.


def _reciprocal(area: Tensor) -> Tensor:
    """1 / area, 0 where area is 0."""
    return (area > 0) / area.clamp(min=1)


def _horizontal_rects(box: Tensor, img: Tensor,
                      grids: _Grids) -> Tuple[Tensor, ...]:
    """One rectangle per (level, box), [L, K]: rows
    ``floor(y1 h / H) .. ceil(y2 h / H)``, columns likewise, inclusive."""
    # [corner (x1, y1) / (x2, y2), axis x / y, L, K] in grid cells
    corner = box.view(2, 2, 1, -1) * grids.size / grids.input_size
    edges = torch.stack([corner[0].floor(), corner[1].ceil() + 1])
    edges = edges.clamp(min=0).minimum(grids.size)
    area = (edges[1] - edges[0]).clamp(min=0).prod(dim=0)
    cols, rows = edges.unbind(dim=1)
    return grids.first_block + img, rows, cols, _reciprocal(area)


def _interval(alpha: Tensor, beta: Tensor,
              half: Tensor) -> Tuple[Tensor, Tensor]:
    """The set of t with ``|alpha * t + beta| <= half``, as [lo, hi]
    (lo > hi when empty; the whole line when alpha = 0 and |beta| <= half).
    """
    flat = alpha == 0
    ends = torch.stack([-half - beta, half - beta]) / torch.where(
        flat, 1., alpha)
    lo, hi = ends.amin(dim=0), ends.amax(dim=0)
    inside = beta.abs() <= half
    lo = torch.where(flat, torch.where(inside, -math.inf, math.inf), lo)
    hi = torch.where(flat, torch.where(inside, math.inf, -math.inf), hi)
    return lo, hi


def _rotated_rects(box: Tensor, img: Tensor,
                   grids: _Grids) -> Tuple[Tuple[Tensor, ...], ...]:
    """The covered cells of rotated boxes, as two sets of rectangles.

    Runs: a cell is covered when its centre lies in the rotated rectangle
    (edges included); per (level, box) and grid row within the box's
    vertical extent, those cells are one run of columns, between where the
    row's centre line crosses the two pairs of parallel edges. One
    rectangle per visited row, ordered by (level, box, row).

    Centres: per (level, box), the cell holding the box centre, with mass 1
    when the box covers no cell centre (and that cell is on the grid).
    """
    in_h, in_w = grids.input_hw
    cx, cy, bw, bh, theta = box
    cos, sin = torch.cos(theta), torch.sin(theta)

    # per (level, box), [L, K]: the grid rows whose centre (i + 0.5) H / h
    # lies within the box's vertical extent
    extent = (bw * sin).abs() / 2 + (bh * cos).abs() / 2
    first_row = torch.ceil((cy - extent) * grids.h / in_h - 0.5).clamp(
        min=0)
    last_row = torch.minimum(
        torch.floor((cy + extent) * grids.h / in_h - 0.5), grids.h - 1)
    num_rows = (last_row - first_row + 1).clamp(min=0).long().flatten()
    # the one device sync: the number of visited (level, box, row) triples
    total = int(num_rows.sum())
    pair = torch.repeat_interleave(num_rows, output_size=total)
    offset = torch.arange(total, device=box.device) - (
        torch.cumsum(num_rows, dim=0) - num_rows)[pair]

    # per visited row, [T]: what it needs of its (level, box), one gather.
    # In the box frame a point (dx, dy) from the centre is inside when
    # |alpha dx + beta dy| <= half on both axes: u = cos dx + sin dy
    # (along w), v = -sin dx + cos dy (along h).
    per_pair = torch.stack(torch.broadcast_tensors(
        first_row, grids.h, grids.w, grids.first_block + img, cx, cy,
        cos, -sin, sin, cos, bw / 2, bh / 2)).flatten(1)
    per_row = per_pair[:, pair]
    first, h, w, block, cx, cy = per_row[:6]
    alpha, beta, half = per_row[6:].view(3, 2, -1)
    row = first + offset
    dy = (row + 0.5) * in_h / h - cy
    lo, hi = _interval(alpha, beta * dy, half)
    x_lo, x_hi = cx + lo.amax(dim=0), cx + hi.amin(dim=0)
    # the run: columns j whose centres (j + 0.5) W / w lie in [x_lo, x_hi]
    cols = torch.stack([torch.ceil(x_lo * w / in_w - 0.5),
                        torch.floor(x_hi * w / in_w - 0.5) + 1])
    cols = cols.clamp(min=0).minimum(w)
    count = (cols[1] - cols[0]).clamp(min=0)
    area = torch.zeros(len(num_rows), dtype=_ACC, device=box.device)
    area.index_add_(0, pair, count)
    value = torch.where(count > 0, _reciprocal(area)[pair], 0.)
    runs = (block, torch.stack([row, row + 1]), cols, value)

    # boxes between cell centres: the cell holding the centre
    start = torch.floor(box[:2, None] * grids.size / grids.input_size)
    on_grid = ((start >= 0) & (start < grids.size)).all(dim=0)
    value = (area.view_as(on_grid) == 0) & on_grid
    edges = torch.stack([start, start + 1]).clamp(min=0).minimum(grids.size)
    cols, rows = edges.unbind(dim=1)
    centres = (grids.first_block + img, rows, cols, value.to(_ACC))
    return runs, centres


# ---------------------------------------------------------------------------
# 3. scatter, 4. cumulative sums


def _scatter(diff: Tensor, block: Tensor, rows: Tensor, cols: Tensor,
             value: Tensor) -> None:
    """Add ``value`` to the cells [start, stop) of each rectangle through
    the difference array: +v at (start row, start col) and (stop row, stop
    col), -v at the two other corners; entries added in index order."""
    _, _, _, num_rows, num_cols = diff.shape
    index = ((block * num_rows + rows) * num_cols)[:, None] + cols[None]
    signed = torch.stack([value, -value, -value, value])
    diff.view(-1).index_add_(0, index.long().flatten(), signed.flatten())


def _integrate(diff: Tensor, grids: _Grids) -> List[Tensor]:
    """Sum the difference array up (in place): the [N, 1, h, w] float32
    maps ``1 + mass`` of each level, views of one buffer."""
    diff.cumsum_(dim=3).cumsum_(dim=4)
    weights = diff.add_(1).to(torch.float32)
    return [weights[i, ..., :h, :w] for i, (h, w) in enumerate(grids.hws)]


def disw_pyramid(boxes: Sequence[Union[Tensor, BaseBoxes]],
                 grid_hws: Sequence[Tuple[int, int]],
                 input_hw: Tuple[float, float]) -> List[Tensor]:
    """DISW maps of several wavelet grids (FPN levels) at once.

    The same maps as :func:`disw_weights` on each grid, built in one
    vectorised pass over all levels (one scatter into one buffer): the
    fixed cost of a call is paid once, not once per level.

    Args:
        boxes (Sequence[Tensor | BaseBoxes]): As for :func:`disw_weights`.
        grid_hws (Sequence[tuple[int, int]]): The wavelet grid (h, w) of
            each level.
        input_hw (tuple[float, float]): Padded batch input size (H, W).

    Returns:
        list[Tensor]: One [N, 1, h, w] float32 map per level.
    """
    for hw in grid_hws:
        _check_hw('grid_hw', hw, integer=True)
    _check_hw('input_hw', input_hw, integer=False)
    tensors = _box_tensors(boxes)
    device = tensors[0].device if tensors else torch.device('cpu')
    grids = _Grids(grid_hws, input_hw, len(tensors), device)
    diff = grids.zeros()
    if tensors and grids.hws:
        box, img = _gather_boxes(tensors, device)
        if box.shape[0] == 4:  # [4 | 5, K]
            _scatter(diff, *_horizontal_rects(box, img, grids))
        else:
            for rects in _rotated_rects(box, img, grids):
                _scatter(diff, *rects)
    return _integrate(diff, grids)


def disw_weights(boxes: Sequence[Union[Tensor, BaseBoxes]],
                 grid_hw: Tuple[int, int],
                 input_hw: Tuple[float, float]) -> Tensor:
    """Density-Independent Scale Weight map on a wavelet grid.

    DISW of DS2D2 (`arXiv 2512.04413 <https://arxiv.org/abs/2512.04413>`_):
    ``W = 1 + sum over boxes k covering the cell of 1 / A_k``, with ``A_k``
    the number of grid cells box k covers after clipping to the grid. Cell
    rules per box type, numerics and cost: ``docs/disw.md``.

    Args:
        boxes (Sequence[Tensor | BaseBoxes]): Per image, [K_i, 4]
            ``(x1, y1, x2, y2)`` or [K_i, 5] ``(cx, cy, w, h, theta)``
            boxes (or ``HorizontalBoxes`` / ``RotatedBoxes``) in
            padded-input pixels; K_i may be 0. One box type for the whole
            batch, all on one device.
        grid_hw (tuple[int, int]): Wavelet grid size (h, w).
        input_hw (tuple[float, float]): Padded batch input size (H, W),
            i.e. ``batch_input_shape``.

    Returns:
        Tensor: [N, 1, h, w] float32 map, N = ``len(boxes)``, on the boxes'
        device.
    """
    return disw_pyramid(boxes, [grid_hw], input_hw)[0]
