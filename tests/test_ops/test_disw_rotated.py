"""disw_weights and disw_reference over rotated boxes against
hand-computed grids, disw_weights against disw_reference on random boxes,
and the relation of the rotated rule to the horizontal one."""
import math

import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from ds2d2_mmrazor.ops import disw_reference, disw_weights

from ..conftest import MMROTATE_MISSING

pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)

from mmrotate.structures.bbox import RotatedBoxes  # noqa: E402


@pytest.fixture(params=[disw_weights, disw_reference],
                ids=['fast', 'reference'])
def disw(request):
    """Each hand computation checks the fast path and the reference."""
    return request.param


def rboxes(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)


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
def test_matches_reference(grid_hw, input_hw):
    gen = torch.Generator().manual_seed(sum(grid_hw) + sum(input_hw))
    images = [random_rboxes(gen, k, input_hw) for k in (60, 0, 9)]
    # sub-cell boxes: they take the cell holding their centre
    tiny = random_rboxes(gen, 20, input_hw)
    tiny[:, 2:4] = torch.rand(20, 2, generator=gen)
    images.append(tiny)
    weight = disw_weights(images, grid_hw, input_hw)
    assert weight.shape == (4, 1) + grid_hw and weight.dtype == torch.float32
    assert torch.equal(weight, disw_reference(images, grid_hw, input_hw))


def test_axis_aligned_box_by_hand(disw):
    # cells 8 px, centres at 4, 12, 20, 28: x in [8, 24] holds the centres
    # 12 and 20 (columns 1, 2), y in [12, 20] the centres 12 and 20 (edges
    # included: rows 1, 2). A = 4.
    weight = disw([rboxes([16, 16, 16, 8, 0])], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[1:3, 1:3] = 1.25
    assert torch.equal(weight[0, 0], want)


def test_diamond_by_hand(disw):
    # a square of side 2.9 turned by 45 degrees about the centre of cell
    # (2, 2): the cell centres with |dx| + |dy| <= 2.9 / sqrt(2) = 2.05,
    # i.e. 1 + 4 + 8 = 13 cells.
    weight = disw([rboxes([2.5, 2.5, 2.9, 2.9, math.pi / 4])], (5, 5),
                  (5, 5))
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(5),
                                indexing='ij')
    diamond = (rows - 2).abs() + (cols - 2).abs() <= 2
    want = torch.where(diamond, torch.tensor(1 + 1 / 13), torch.tensor(1.))
    assert diamond.sum() == 13
    assert torch.equal(weight[0, 0], want)


def test_rotation_symmetries(disw):
    box = [30.0, 21.0, 25.0, 9.0, 0.3]
    cx, cy, w, h, t = box
    same = [
        [cx, cy, w, h, t + math.pi],  # half a turn
        [cx, cy, h, w, t + math.pi / 2],  # w and h swapped, quarter turn
        [cx, cy, h, w, t - math.pi / 2],
    ]
    ref = disw([torch.tensor([box]).double()], (12, 16), (48, 64))
    assert (ref > 1).sum() > 4
    for other in same:
        got = disw([torch.tensor([other]).double()], (12, 16), (48, 64))
        assert torch.equal(got, ref), other


def test_relation_to_the_horizontal_rule(disw):
    gen = torch.Generator().manual_seed(3)
    # axis-aligned boxes inside a 64 x 96 input, on an 8 x 12 grid
    lo = torch.rand(40, 2, generator=gen) * torch.tensor([70., 45.])
    size = 1 + torch.rand(40, 2, generator=gen) * 20
    hbox = torch.cat([lo, lo + size], dim=1)
    rbox = torch.cat([lo + size / 2, size, torch.zeros(40, 1)], dim=1)
    for one_h, one_r in zip(hbox.split(1), rbox.split(1)):
        w_h = disw([one_h], (8, 12), (64, 96))
        w_r = disw([one_r], (8, 12), (64, 96))
        # both give the object a mass of 1 ...
        for weight in (w_h, w_r):
            assert (weight.double() - 1).sum().item() == pytest.approx(
                1, abs=1e-6)
        # ... over nested supports: centre rule within the floor/ceil range
        assert ((w_r > 1) <= (w_h > 1)).all()
    # edges on grid lines (8 px cells): 2 x 3 cells hold the centres, the
    # release's rule adds the ceil row and column: 3 x 4 cells
    w_h = disw([torch.tensor([[8., 16., 32., 32.]])], (8, 12), (64, 96))
    w_r = disw([rboxes([20, 24, 24, 16, 0])], (8, 12), (64, 96))
    assert (w_r > 1).sum() == 6 and (w_h > 1).sum() == 12
    assert torch.equal(w_r[0, 0, 2:4, 1:4],
                       torch.full((2, 3), 1 + 1 / 6))
    assert torch.equal(w_h[0, 0, 2:5, 1:5],
                       torch.full((3, 4), 1 + 1 / 12))


def test_edge_through_cell_centres_is_included(disw):
    # grid 13 x 13 over 33 x 100: row centres (i + 0.5) * 33 / 13, so row
    # 6's is 16.5, exactly on the bottom edge 15 + 3 / 2 (cell height
    # 33 / 13 is not exact in binary); row 5's is 13.96, row 4's 11.42 is
    # above the top edge 13.5. Columns: centres (j + 0.5) * 100 / 13 in
    # [11.5, 24.5] are 11.54 and 19.23 (columns 1, 2). A = 4.
    weight = disw([rboxes([18, 15, 13, 3, 0])], (13, 13), (33, 100))
    want = torch.ones(13, 13)
    want[5:7, 1:3] = 1.25
    assert torch.equal(weight[0, 0], want)


def test_tiny_and_degenerate_boxes_take_their_centre_cell(disw):
    # between cell centres, zero width, zero size: the centre's cell
    boxes = rboxes([13, 5, 1, 1, 0.4], [20, 29, 0, 10, 0.0],
                   [2, 30, 0, 0, 1.0])
    weight = disw([boxes], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[0, 1] = want[3, 2] = want[3, 0] = 2
    assert torch.equal(weight[0, 0], want)


def test_boxes_off_the_grid_contribute_nothing(disw):
    boxes = rboxes([-20, 10, 8, 8, 0.5],     # wholly left of the input
                   [40, 40, 2, 2, 0.0])      # tiny, centre off the grid
    weight = disw([boxes, torch.zeros(0, 5)], (4, 4), (32, 32))
    assert torch.equal(weight, torch.ones(2, 1, 4, 4))


def test_partly_outside_box_counts_only_grid_cells(disw):
    # x in [-8, 8] holds the centre 4 (column 0) only; rows 0 .. 3
    weight = disw([rboxes([0, 16, 16, 32, 0])], (4, 4), (32, 32))
    want = torch.ones(4, 4)
    want[:, 0] = 1.25
    assert torch.equal(weight[0, 0], want)


def test_many_dense_boxes_keep_mass(disw):
    gen = torch.Generator().manual_seed(1)
    ctr = 50 + torch.rand(3000, 2, generator=gen) * 700
    wh = 4 + torch.rand(3000, 2, generator=gen) * 60
    theta = (torch.rand(3000, 1, generator=gen) - 0.5) * math.pi
    boxes = torch.cat([ctr, wh, theta], dim=1)
    weight = disw([boxes, boxes[:500]], (50, 50), (800, 800))
    mass = (weight.double() - 1).sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        mass, torch.tensor([3000., 500.], dtype=torch.float64), rtol=1e-6,
        atol=0)


def test_box_structures_and_dtypes(disw):
    box = [[16, 16, 16, 8, 0.2], [5, 7, 3, 9, -1.0]]
    ref = disw([torch.tensor(box, dtype=torch.float64)], (4, 4), (32, 32))
    got = disw([RotatedBoxes(torch.tensor(box))], (4, 4), (32, 32))
    assert torch.equal(got, ref) and got.dtype == torch.float32
    hbox = torch.tensor([[9., 17., 20., 22.]])
    assert torch.equal(disw([HorizontalBoxes(hbox)], (4, 4), (32, 32)),
                       disw([hbox], (4, 4), (32, 32)))
    # an image without boxes takes the batch's box type
    two = disw([torch.zeros(0, 4), torch.tensor(box)], (4, 4), (32, 32))
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
