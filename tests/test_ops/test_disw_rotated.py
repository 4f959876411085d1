"""disw_weights over rotated boxes against hand-computed grids and an
explicit per-cell point-in-polygon loop; its relation to the horizontal
rule."""
import math

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.structures.bbox import RotatedBoxes

from ds2d2_mmrazor.ops import disw_weights


def rboxes(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)


def inside_polygon(corners: np.ndarray, x: float, y: float) -> bool:
    """Whether (x, y) lies in the convex polygon (edges included)."""
    signs = []
    for k in range(4):
        (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % 4]
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        if abs(cross) > 1e-9:
            signs.append(cross > 0)
    return len(set(signs)) <= 1


def reference(boxes, grid_hw, input_hw) -> np.ndarray:
    """Per box, per cell: is the cell centre in the box's polygon (corners
    from MMRotate's rbox -> qbox conversion)? A box covering no centre
    takes the cell holding its centre, if that cell is on the grid."""
    h, w = grid_hw
    in_h, in_w = input_hw
    out = np.ones((len(boxes), 1, h, w))
    for n, image_boxes in enumerate(boxes):
        quads = RotatedBoxes(image_boxes.double()).convert_to('qbox').tensor
        for box, quad in zip(image_boxes.tolist(), quads.numpy()):
            corners = quad.reshape(4, 2)
            cells = [(r, c) for r in range(h) for c in range(w)
                     if inside_polygon(corners, (c + 0.5) * in_w / w,
                                       (r + 0.5) * in_h / h)]
            if not cells:
                r = math.floor(box[1] * h / in_h)
                c = math.floor(box[0] * w / in_w)
                if 0 <= r < h and 0 <= c < w:
                    cells = [(r, c)]
            for r, c in cells:
                out[n, 0, r, c] += 1 / len(cells)
    return out


def random_rboxes(gen, k, input_hw):
    """Boxes anywhere within 20% beyond the input, sizes from sub-cell to
    half the input, any angle (beyond the le90 range too)."""
    in_h, in_w = input_hw
    ctr = (torch.rand(k, 2, generator=gen) * 1.4 - 0.2) * torch.tensor(
        [in_w, in_h])
    wh = torch.rand(k, 2, generator=gen)**2 * 0.5 * torch.tensor(
        [in_w, in_h])
    theta = (torch.rand(k, 1, generator=gen) - 0.5) * 2 * math.pi
    return torch.cat([ctr, wh, theta], dim=1)


@pytest.mark.parametrize('grid_hw,input_hw', [
    ((7, 9), (100, 130)), ((8, 8), (64, 64)), ((5, 13), (33, 100)),
    ((13, 4), (101, 37)), ((1, 1), (32, 32))])
def test_matches_point_in_polygon_loop(grid_hw, input_hw):
    gen = torch.Generator().manual_seed(sum(grid_hw) + sum(input_hw))
    images = [random_rboxes(gen, k, input_hw) for k in (60, 0, 9)]
    weight = disw_weights(images, grid_hw, input_hw)
    assert weight.shape == (3, 1) + grid_hw and weight.dtype == torch.float32
    np.testing.assert_allclose(
        weight.numpy(), reference(images, grid_hw, input_hw), rtol=0,
        atol=1e-6)


def test_axis_aligned_box_by_hand():
    # cells 8 px, centres at 4, 12, 20, 28: x in [8, 24] holds the centres
    # 12 and 20 (columns 1, 2), y in [12, 20] the centres 12 and 20 (edges
    # included: rows 1, 2). A = 4.
    weight = disw_weights([rboxes([16, 16, 16, 8, 0])], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[1:3, 1:3] = 1.25
    assert torch.equal(weight[0, 0], want)


def test_diamond_by_hand():
    # a square of side 2.9 turned by 45 degrees about the centre of cell
    # (2, 2): the cell centres with |dx| + |dy| <= 2.9 / sqrt(2) = 2.05,
    # i.e. 1 + 4 + 8 = 13 cells.
    weight = disw_weights([rboxes([2.5, 2.5, 2.9, 2.9, math.pi / 4])],
                          (5, 5), (5, 5))
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(5),
                                indexing='ij')
    diamond = (rows - 2).abs() + (cols - 2).abs() <= 2
    want = torch.where(diamond, torch.tensor(1 + 1 / 13), torch.tensor(1.))
    assert diamond.sum() == 13
    assert torch.equal(weight[0, 0], want)


def test_rotation_symmetries():
    box = [30.0, 21.0, 25.0, 9.0, 0.3]
    cx, cy, w, h, t = box
    same = [
        [cx, cy, w, h, t + math.pi],  # half a turn
        [cx, cy, h, w, t + math.pi / 2],  # w and h swapped, quarter turn
        [cx, cy, h, w, t - math.pi / 2],
    ]
    ref = disw_weights([torch.tensor([box]).double()], (12, 16), (48, 64))
    assert (ref > 1).sum() > 4
    for other in same:
        got = disw_weights([torch.tensor([other]).double()], (12, 16),
                           (48, 64))
        assert torch.equal(got, ref), other


def test_relation_to_the_horizontal_rule():
    gen = torch.Generator().manual_seed(3)
    # axis-aligned boxes inside a 64 x 96 input, on an 8 x 12 grid
    lo = torch.rand(40, 2, generator=gen) * torch.tensor([70., 45.])
    size = 1 + torch.rand(40, 2, generator=gen) * 20
    hbox = torch.cat([lo, lo + size], dim=1)
    rbox = torch.cat([lo + size / 2, size, torch.zeros(40, 1)], dim=1)
    for one_h, one_r in zip(hbox.split(1), rbox.split(1)):
        w_h = disw_weights([one_h], (8, 12), (64, 96))
        w_r = disw_weights([one_r], (8, 12), (64, 96))
        # both give the object a mass of 1 ...
        for weight in (w_h, w_r):
            assert (weight.double() - 1).sum().item() == pytest.approx(
                1, abs=1e-6)
        # ... over nested supports: centre rule within the floor/ceil range
        assert ((w_r > 1) <= (w_h > 1)).all()
    # edges on grid lines (8 px cells): 2 x 3 cells hold the centres, the
    # release's rule adds the ceil row and column: 3 x 4 cells
    w_h = disw_weights([torch.tensor([[8., 16., 32., 32.]])], (8, 12),
                       (64, 96))
    w_r = disw_weights([rboxes([20, 24, 24, 16, 0])], (8, 12), (64, 96))
    assert (w_r > 1).sum() == 6 and (w_h > 1).sum() == 12
    assert torch.equal(w_r[0, 0, 2:4, 1:4],
                       torch.full((2, 3), 1 + 1 / 6))
    assert torch.equal(w_h[0, 0, 2:5, 1:5],
                       torch.full((3, 4), 1 + 1 / 12))


def test_tiny_and_degenerate_boxes_take_their_centre_cell():
    # between cell centres, zero width, zero size: the centre's cell
    boxes = rboxes([13, 5, 1, 1, 0.4], [20, 29, 0, 10, 0.0],
                   [2, 30, 0, 0, 1.0])
    weight = disw_weights([boxes], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[0, 1] = want[3, 2] = want[3, 0] = 2
    assert torch.equal(weight[0, 0], want)


def test_boxes_off_the_grid_contribute_nothing():
    boxes = rboxes([-20, 10, 8, 8, 0.5],     # wholly left of the input
                   [40, 40, 2, 2, 0.0])      # tiny, centre off the grid
    weight = disw_weights([boxes, torch.zeros(0, 5)], (4, 4), (32, 32))
    assert torch.equal(weight, torch.ones(2, 1, 4, 4))


def test_partly_outside_box_counts_only_grid_cells():
    # x in [-8, 8] holds the centre 4 (column 0) only; rows 0 .. 3
    weight = disw_weights([rboxes([0, 16, 16, 32, 0])], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[:, 0] = 1.25
    assert torch.equal(weight[0, 0], want)


def test_many_dense_boxes_keep_mass():
    gen = torch.Generator().manual_seed(1)
    ctr = 50 + torch.rand(3000, 2, generator=gen) * 700
    wh = 4 + torch.rand(3000, 2, generator=gen) * 60
    theta = (torch.rand(3000, 1, generator=gen) - 0.5) * math.pi
    boxes = torch.cat([ctr, wh, theta], dim=1)
    weight = disw_weights([boxes, boxes[:500]], (50, 50), (800, 800))
    mass = (weight.double() - 1).sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        mass, torch.tensor([3000., 500.], dtype=torch.float64), rtol=1e-6,
        atol=0)


def test_box_structures_and_dtypes():
    box = [[16, 16, 16, 8, 0.2], [5, 7, 3, 9, -1.0]]
    ref = disw_weights([torch.tensor(box, dtype=torch.float64)], (4, 4),
                       (32, 32))
    got = disw_weights([RotatedBoxes(torch.tensor(box))], (4, 4), (32, 32))
    assert torch.equal(got, ref) and got.dtype == torch.float32
    hbox = torch.tensor([[9., 17., 20., 22.]])
    assert torch.equal(disw_weights([HorizontalBoxes(hbox)], (4, 4),
                                    (32, 32)),
                       disw_weights([hbox], (4, 4), (32, 32)))
    # an image without boxes takes the batch's box type
    two = disw_weights([torch.zeros(0, 4), torch.tensor(box)], (4, 4),
                       (32, 32))
    assert torch.equal(two[0], torch.ones(1, 4, 4))
    assert torch.equal(two[1], ref[0])


def test_bad_box_batches():
    with pytest.raises(ValueError, match=r'mix horizontal \[K, 4\] and '
                       r'rotated \[K, 5\]'):
        disw_weights([torch.zeros(1, 4), torch.zeros(1, 5)], (4, 4), (8, 8))
    with pytest.raises(ValueError, match=r"got \(2, 8\); quadrilaterals.*"
                       r"'ConvertBoxType', "
                       r"box_type_mapping=dict\(gt_bboxes='rbox'\)\)"):
        disw_weights([torch.zeros(2, 8)], (4, 4), (8, 8))


@pytest.mark.parametrize('rotated', [False, True])
def test_pyramid_equals_one_call_per_level(rotated):
    from ds2d2_mmrazor.ops import disw_pyramid
    gen = torch.Generator().manual_seed(5)
    input_hw = (200, 136)
    if rotated:
        images = [random_rboxes(gen, k, input_hw) for k in (40, 0, 7)]
    else:
        lo = torch.rand(40, 2, generator=gen) * 150 - 10
        images = [torch.cat([lo, lo + 1 + torch.rand(40, 2, generator=gen)
                             * 60], 1), torch.zeros(0, 4), lo[:3].repeat(
                                 1, 2) + torch.tensor([0., 0, 2, 3])]
    grids = [(13, 9), (7, 5), (4, 3), (2, 2), (1, 1)]
    maps = disw_pyramid(images, grids, input_hw)
    assert [tuple(m.shape) for m in maps] == [(3, 1) + g for g in grids]
    for grid, got in zip(grids, maps):
        assert torch.equal(got, disw_weights(images, grid, input_hw))
    assert disw_pyramid(images, [], input_hw) == []
