"""Density-Independent Scale Weight (DISW) over horizontal or rotated boxes.

The weight map of DS2D2's explicit stream (arXiv 2512.04413, method doc
section 2): every ground-truth box spreads a total mass of 1 evenly over the
wavelet-grid cells it covers, so small objects weigh more per cell,
overlapping objects add up and background stays at 1. Both box types are
turned into cell rectangles (a horizontal box: one; a rotated box: one
single-row run of cells per grid row) that are added to 2-D difference
arrays, all FPN levels in one vectorised scatter, then summed up with two
cumulative sums per level.
"""
from numbers import Integral, Real
from typing import List, Sequence, Tuple, Union

import torch
from mmdet.structures.bbox import BaseBoxes
from torch import Tensor

BOX_LAYOUTS = {4: '(x1, y1, x2, y2)', 5: '(cx, cy, w, h, theta)'}
# float64: exact for the scaled coordinates of float16 / float32 boxes, and
# 1 / A stays representable for any grid (see disw_weights).
_ACC = torch.float64


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


class _Levels:
    """The grids of the pyramid levels and their blocks in one flat
    difference array.

    Level l is an [N, h_l + 1, w_l + 1] block at offset ``start[l]``. Grid
    sizes are [L, 1] tensors, broadcasting against [K] box coordinates:
    float64 for scaling, long for clipping.
    """

    def __init__(self, grid_hws: Sequence[Tuple[int, int]], n: int,
                 device: torch.device) -> None:
        self.hws = [tuple(hw) for hw in grid_hws]
        self.sizes = [n * (h + 1) * (w + 1) for h, w in self.hws]
        starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        as_long = dict(dtype=torch.long, device=device)
        self.h = torch.tensor([h for h, _ in self.hws], **as_long)[:, None]
        self.w = torch.tensor([w for _, w in self.hws], **as_long)[:, None]
        self.start = torch.tensor(starts, **as_long)[:, None]
        self.hf, self.wf = self.h.to(_ACC), self.w.to(_ACC)

    def maps(self, diff: Tensor) -> List[Tensor]:
        """Sum each level's block of the difference array up (in place):
        the [N, 1, h, w] float32 maps ``1 + mass``, views of one buffer."""
        for (h, w), block in zip(self.hws, diff.split(self.sizes)):
            block.view(-1, h + 1, w + 1).cumsum_(1).cumsum_(2)
        weights = (1 + diff).to(torch.float32)
        return [
            block.view(-1, 1, h + 1, w + 1)[..., :h, :w]
            for (h, w), block in zip(self.hws, weights.split(self.sizes))
        ]


def _horizontal_cells(box: Tensor, levels: _Levels,
                      input_hw: Tuple[float, float]) -> Tuple[Tensor, ...]:
    """Covered cell rectangle of each horizontal box on each level, as the
    release has it.

    Rows ``floor(y1 * h / H) .. ceil(y2 * h / H)`` and columns likewise,
    inclusive, clipped to the grid. Returns ``(r0, r1, c0, c1, count)``,
    each [L, K]; ``count`` is 0 where the clipped range is empty.
    """
    in_h, in_w = input_hw
    x1, y1, x2, y2 = box.unbind(dim=1)
    r0 = torch.floor(y1 * levels.hf / in_h).long().clamp(min=0)
    r1 = torch.minimum(torch.ceil(y2 * levels.hf / in_h).long(),
                       levels.h - 1)
    c0 = torch.floor(x1 * levels.wf / in_w).long().clamp(min=0)
    c1 = torch.minimum(torch.ceil(x2 * levels.wf / in_w).long(),
                       levels.w - 1)
    count = (r1 - r0 + 1).clamp(min=0) * (c1 - c0 + 1).clamp(min=0)
    return r0, r1, c0, c1, count


def _interval(alpha: Tensor, beta: Tensor,
              half: Tensor) -> Tuple[Tensor, Tensor]:
    """The set of t with ``|alpha * t + beta| <= half``, as [lo, hi]
    (lo > hi when empty; the whole line when alpha = 0 and |beta| <= half).
    """
    inf = torch.full_like(alpha, float('inf'))
    safe = torch.where(alpha == 0, torch.ones_like(alpha), alpha)
    a, b = (-half - beta) / safe, (half - beta) / safe
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    inside = beta.abs() <= half
    lo = torch.where(alpha == 0, torch.where(inside, -inf, inf), lo)
    hi = torch.where(alpha == 0, torch.where(inside, inf, -inf), hi)
    return lo, hi


def _rotated_cells(box: Tensor, levels: _Levels,
                   input_hw: Tuple[float, float]) -> Tuple[Tensor, ...]:
    """Covered cells of each rotated box on each level, as one run of
    columns per grid row.

    A cell is covered when its centre lies in the rotated rectangle (edges
    included). Per box and grid row, the cell centres of that row inside the
    rectangle are one run of columns: the row's centre line cut by the two
    pairs of parallel edges. Only the rows within the box's vertical extent
    are visited, so the work is proportional to the rows the boxes span.

    Returns:
        tuple[Tensor, ...]: ``(pair, rows, c0, c1, count)``, one entry per
        visited (level, box, row): the (level, box) pair as ``l * K + k``,
        the row, the first and last column of the run and its length (0
        where the row misses the box).
    """
    in_h, in_w = input_hw
    cx, cy, bw, bh, theta = box.unbind(dim=1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # rows whose centre (i + 0.5) * H / h is within the box's y extent
    extent = (bw * sin).abs() / 2 + (bh * cos).abs() / 2
    r0 = torch.ceil((cy - extent) * levels.hf / in_h - 0.5).clamp(min=0)
    r1 = torch.minimum(torch.floor((cy + extent) * levels.hf / in_h - 0.5),
                       levels.hf - 1)
    num_rows = (r1 - r0 + 1).clamp(min=0).long().flatten()  # [L * K]
    # one device sync: the number of (level, box, row) triples
    total = int(num_rows.sum())
    pair = torch.repeat_interleave(
        torch.arange(len(num_rows), device=box.device), num_rows,
        output_size=total)
    first = torch.cumsum(num_rows, dim=0) - num_rows
    rows = r0.long().flatten()[pair] + torch.arange(
        total, device=box.device) - first[pair]
    level, k = pair // len(box), pair % len(box)
    cell_h = in_h / levels.hf.flatten()[level]
    cols_per_px = levels.wf.flatten()[level] / in_w
    cx, bw, bh, cos, sin = (v[k] for v in (cx, bw, bh, cos, sin))
    dy = (rows.to(box.dtype) + 0.5) * cell_h - cy[k]
    # box frame: u = dx cos + dy sin (along w), v = -dx sin + dy cos
    lo_u, hi_u = _interval(cos, dy * sin, bw / 2)
    lo_v, hi_v = _interval(-sin, dy * cos, bh / 2)
    x_lo = cx + torch.maximum(lo_u, lo_v)
    x_hi = cx + torch.minimum(hi_u, hi_v)
    # columns j whose centres (j + 0.5) * W / w lie in [x_lo, x_hi]
    width = levels.w.flatten()[level]
    c0 = torch.ceil(x_lo * cols_per_px - 0.5).clamp(min=0).long()
    c0 = torch.minimum(c0, width)
    c1 = torch.floor(x_hi * cols_per_px - 0.5).clamp(min=-1).long()
    c1 = torch.minimum(c1, width - 1)
    count = (c1 - c0 + 1).clamp(min=0)
    return pair, rows, c0, c1, count


def _scatter(diff: Tensor, levels: _Levels, level: Tensor, img: Tensor,
             r0: Tensor, r1: Tensor, c0: Tensor, c1: Tensor,
             value: Tensor) -> None:
    """Add ``value`` to the cell rectangles [r0..r1] x [c0..c1] of images
    ``img`` on levels ``level`` through the flat difference array ``diff``
    (all index tensors of one shape). Entries with value 0 may have empty
    or out-of-grid ranges."""
    h, w = levels.h.flatten()[level], levels.w.flatten()[level]
    # clip to the grid: rows [0, h - 1], the row / column after the range
    # up to h / w (inside the level's (h + 1) x (w + 1) block)
    rows = torch.stack([r0.clamp(min=0), r1.clamp(min=-1) + 1])
    rows = torch.minimum(rows, torch.stack([h - 1, h]))
    cols = torch.stack([c0.clamp(min=0), c1.clamp(min=-1) + 1])
    cols = torch.minimum(cols, torch.stack([w - 1, w]))
    offset = levels.start.flatten()[level] + img * (h + 1) * (w + 1)
    index = (offset + rows * (w + 1))[:, None] + cols[None]  # [2, 2, ...]
    sign = torch.tensor([[1., -1.], [-1., 1.]], dtype=_ACC,
                        device=value.device)
    sign = sign.view((2, 2) + (1, ) * value.dim())
    diff.index_add_(0, index.flatten(), (sign * value).flatten())


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
    n = len(tensors)
    device = tensors[0].device if n else torch.device('cpu')
    levels = _Levels(grid_hws, n, device)
    diff = torch.zeros(sum(levels.sizes), dtype=_ACC, device=device)
    if n:
        counts = [len(b) for b in tensors]
        # output_size given: no device sync to read the counts back.
        img = torch.repeat_interleave(
            torch.arange(n, device=device),
            torch.tensor(counts, device=device), output_size=sum(counts))
        box = torch.cat(tensors).to(_ACC)
        zero = torch.zeros((), dtype=_ACC, device=device)
        level = torch.arange(len(levels.hws), device=device)[:, None]
        level = level.expand(-1, len(box))  # [L, K]
        img = img.expand_as(level)
        if box.shape[1] == 4:
            r0, r1, c0, c1, area = _horizontal_cells(box, levels, input_hw)
            value = torch.where(area > 0, 1 / area.clamp(min=1).to(_ACC),
                                zero)
            _scatter(diff, levels, level, img, r0, r1, c0, c1, value)
        else:
            pair, rows, c0, c1, count = _rotated_cells(box, levels,
                                                       input_hw)
            area = torch.zeros(level.numel(), dtype=torch.long,
                               device=device)
            area.index_add_(0, pair, count)
            value = torch.where(count > 0,
                                1 / area.clamp(min=1).to(_ACC)[pair], zero)
            _scatter(diff, levels, level.flatten()[pair],
                     img.flatten()[pair], rows, rows, c0, c1, value)
            # boxes between cell centres: the cell holding the centre
            row = torch.floor(box[:, 1] * levels.hf / input_hw[0]).long()
            col = torch.floor(box[:, 0] * levels.wf / input_hw[1]).long()
            on_grid = (row >= 0) & (row < levels.h) & (col >= 0) & \
                (col < levels.w)
            value = torch.where((area.view_as(row) == 0) & on_grid,
                                torch.ones_like(row, dtype=_ACC), zero)
            _scatter(diff, levels, level, img, row, row, col, col, value)
    return levels.maps(diff)


def disw_weights(boxes: Sequence[Union[Tensor, BaseBoxes]],
                 grid_hw: Tuple[int, int],
                 input_hw: Tuple[float, float]) -> Tensor:
    """Density-Independent Scale Weight map on a wavelet grid.

    DISW of DS2D2 (`arXiv 2512.04413 <https://arxiv.org/abs/2512.04413>`_):

    ``W = 1 + sum over boxes k covering the cell of 1 / A_k``,

    with ``A_k`` the number of grid cells box k covers (after clipping to
    the grid). Which cells a box covers depends on its type:

    - horizontal boxes, [K, 4] ``(x1, y1, x2, y2)``, as the authors' release
      computes it: with ``s_y = h / H`` and ``s_x = w / W``, rows
      ``floor(y1 * s_y) .. ceil(y2 * s_y)`` and columns
      ``floor(x1 * s_x) .. ceil(x2 * s_x)``, inclusive. A box whose clipped
      range is empty contributes nothing.
    - rotated boxes, [K, 5] ``(cx, cy, w, h, theta)`` (MMRotate's
      ``RotatedBoxes``, theta in radians, any angle convention; this
      project's extension, the release has none): the cells whose centre
      ``((j + 0.5) W / w, (i + 0.5) H / h)`` lies inside the rotated
      rectangle, edges included. A box covering no cell centre (smaller
      than a cell) covers the cell holding its centre, so tiny objects
      still count; one whose centre is off the grid as well contributes
      nothing.

    Relation of the two for an axis-aligned box (theta = 0): the rotated
    rule covers a subset of the horizontal rule's cells, since a cell whose
    centre is inside the box also meets the box's floor / ceil range. Both
    give the box a mass of 1 when it lies inside the grid. They differ at
    the borders: the horizontal rule also counts every cell the box only
    touches (e.g. a box whose edges lie on grid lines, spanning m x n
    cells, covers (m + 1) x (n + 1) cells: the ceil row and column beyond
    it), while the rotated rule counts the m x n cells whose centres it
    holds. Use rotated boxes with theta = 0 to get the centre rule for
    horizontal data.

    Runs without a loop over boxes, in O(K + h*w) for horizontal boxes and
    O(K + R + h*w) for rotated ones, R being the number of grid rows the
    rotated boxes span in total (about K * (box height / cell height + 1));
    the rotated path reads R back from the device once. For several grids
    (FPN levels) use :func:`disw_pyramid`, which builds them in one pass.

    Numerics: scaled coordinates and the map are accumulated in float64 and
    the map is returned in float32, whatever the box dtype, so
    ``1 + 1 / A`` stays above 1 for large boxes (the release's float16 map
    rounds it to 1 once A > 2048). For horizontal float16 / float32 boxes
    ``coord * h / H`` is exact up to one correctly rounded division, so
    ``floor`` / ``ceil`` agree with the exact rational value (ties on a grid
    line included). Float64 needs a device that supports it (CPU, CUDA).

    Args:
        boxes (Sequence[Tensor | BaseBoxes]): Per image, a [K_i, 4] or
            [K_i, 5] tensor (or MMDetection ``HorizontalBoxes`` /
            MMRotate ``RotatedBoxes``) in padded-input pixels; K_i may be 0.
            One box type for the whole batch, all on one device.
        grid_hw (tuple[int, int]): Wavelet grid size (h, w).
        input_hw (tuple[float, float]): Padded batch input size (H, W),
            i.e. ``batch_input_shape``.

    Returns:
        Tensor: The weight map, shape [N, 1, h, w] with N = ``len(boxes)``,
        float32, on the boxes' device.
    """
    return disw_pyramid(boxes, [grid_hw], input_hw)[0]
