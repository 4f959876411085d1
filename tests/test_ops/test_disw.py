"""disw_weights and disw_reference against hand-computed grids, and
disw_weights against disw_reference on random boxes."""
import math
from fractions import Fraction
from typing import List, Sequence, Tuple

import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from ds2d2_mmrazor.ops import disw_reference, disw_weights


@pytest.fixture(params=[disw_weights, disw_reference],
                ids=['fast', 'reference'])
def disw(request):
    """Each hand computation checks the fast path and the reference."""
    return request.param


def boxes_of(*rows: Sequence[float], dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def expected(grid_hw: Tuple[int, int],
             covers: List[Tuple[int, int, int, int]]) -> torch.Tensor:
    """A [h, w] float64 map 1 + sum 1/A over the given inclusive cell
    ranges (r0, r1, c0, c1), written out by hand in each test."""
    out = torch.ones(grid_hw, dtype=torch.float64)
    for r0, r1, c0, c1 in covers:
        out[r0:r1 + 1, c0:c1 + 1] += 1 / ((r1 - r0 + 1) * (c1 - c0 + 1))
    return out


def test_single_box(disw):
    # s = 4/32 = 1/8: rows floor(17/8)=2 .. ceil(22/8)=3,
    # cols floor(9/8)=1 .. ceil(20/8)=3, so A = 2 * 3 = 6.
    weight = disw([boxes_of([9, 17, 20, 22])], (4, 4), (32, 32))
    assert weight.shape == (1, 1, 4, 4) and weight.dtype == torch.float32
    want = torch.ones(4, 4)
    want[2:4, 1:4] = 1 + 1 / 6
    assert torch.equal(weight[0, 0], want)
    assert (weight - 1).sum().item() == pytest.approx(1, abs=1e-6)


def test_exact_tie_is_not_widened(disw):
    # s = 4/8 = 0.5 is exact in binary: cols floor(2*0.5)=1 .. ceil(4*0.5)=2,
    # rows floor(4*0.5)=2 .. ceil(6*0.5)=3; an exact grid line is not
    # rounded to the next cell.
    weight = disw([boxes_of([2, 4, 4, 6])], (4, 4), (8, 8))
    torch.testing.assert_close(
        weight[0, 0].double(), expected((4, 4), [(2, 3, 1, 2)]))


def test_two_overlapping_boxes_add(disw):
    # s = 1/8. Box a: rows 0..2 (1/8 .. 13/8), cols 0..2 -> A = 9.
    # Box b: rows 1..3 (10/8 .. 20/8), cols 2..4 (17/8 .. 31/8) -> A = 9.
    boxes = boxes_of([3, 1, 13, 13], [17, 10, 31, 20])
    weight = disw([boxes], (5, 6), (40, 48))
    want = expected((5, 6), [(0, 2, 0, 2), (1, 3, 2, 4)])
    torch.testing.assert_close(weight[0, 0].double(), want)
    assert weight[0, 0, 1, 2].item() == pytest.approx(1 + 2 / 9)
    assert (weight - 1).sum().item() == pytest.approx(2, abs=1e-5)


def test_border_clipping_counts_clipped_cells(disw):
    # s = 1/8: rows floor(20/8)=2 .. ceil(40/8)=5 -> clipped 2..3,
    # cols floor(-10/8)=-2 .. ceil(12/8)=2 -> clipped 0..2; A = 2 * 3 = 6.
    weight = disw([boxes_of([-10, 20, 12, 40])], (4, 4), (32, 32))
    torch.testing.assert_close(
        weight[0, 0].double(), expected((4, 4), [(2, 3, 0, 2)]))
    assert (weight - 1).sum().item() == pytest.approx(1, abs=1e-6)


def test_tiny_boxes_cover_at_least_one_cell(disw):
    # A sliver inside one cell: floor / ceil give 2 x 2 cells.
    weight = disw([boxes_of([10.2, 10.3, 10.4, 10.5])], (4, 4), (32, 32))
    torch.testing.assert_close(
        weight[0, 0].double(), expected((4, 4), [(1, 2, 1, 2)]))
    # A point on a grid corner: floor = ceil = 1, one cell with weight 2.
    weight = disw([boxes_of([8, 8, 8, 8])], (4, 4), (32, 32))
    torch.testing.assert_close(
        weight[0, 0].double(), expected((4, 4), [(1, 1, 1, 1)]))
    assert weight.max().item() == 2


def test_huge_box_covers_the_grid(disw):
    weight = disw([boxes_of([-100, -100, 1000, 1000])], (5, 7), (40, 56))
    assert torch.equal(weight, torch.full((1, 1, 5, 7), 1 + 1 / 35))


def test_no_boxes_and_boxes_outside_give_ones(disw):
    ones = torch.ones(1, 1, 4, 4)
    assert torch.equal(
        disw([torch.zeros(0, 4)], (4, 4), (32, 32)), ones)
    outside = [
        [40, 40, 50, 50],  # below / right: floor(5) = 5 > 3
        [-20, -20, -10, -10],  # above / left: ceil(-1.25) = -1 < 0
        [40, 5, 50, 10],  # right of the grid only
        [20, 5, 4, 10],  # x2 < x1: cols 2 .. 1, empty
    ]
    for box in outside:
        weight = disw([boxes_of(box)], (4, 4), (32, 32))
        assert torch.equal(weight, ones), box
    assert disw([], (4, 4), (32, 32)).shape == (0, 1, 4, 4)


def test_batch_with_different_box_counts(disw):
    grid, size = (4, 4), (32, 32)
    images = [
        boxes_of([9, 17, 20, 22]),
        torch.zeros(0, 4),
        boxes_of([-10, 20, 12, 40], [9, 17, 20, 22], [40, 40, 50, 50]),
        boxes_of([40, 40, 50, 50]),
        boxes_of([-100, -100, 1000, 1000]),
    ]
    weight = disw(images, grid, size)
    assert weight.shape == (5, 1, 4, 4)
    wants = [
        expected(grid, [(2, 3, 1, 3)]),
        expected(grid, []),
        expected(grid, [(2, 3, 0, 2), (2, 3, 1, 3)]),
        expected(grid, []),
        expected(grid, [(0, 3, 0, 3)]),
    ]
    for n, want in enumerate(wants):
        torch.testing.assert_close(weight[n, 0].double(), want)
        assert torch.equal(weight[n], disw([images[n]], grid, size)[0])


def test_non_square_scales(disw):
    # grid (3, 5) over input (24, 64): s_y = 1/8, s_x = 5/64.
    # rows floor(5/8)=0 .. ceil(11/8)=2; cols floor(65/64)=1 ..
    # ceil(150/64)=3; A = 9. Swapping the scales would give other cells.
    weight = disw([boxes_of([13, 5, 30, 11])], (3, 5), (24, 64))
    torch.testing.assert_close(
        weight[0, 0].double(), expected((3, 5), [(0, 2, 1, 3)]))


@pytest.mark.parametrize('grid_hw,input_hw', [
    ((7, 9), (100, 130)), ((8, 8), (64, 64)), ((5, 13), (33, 100)),
    ((13, 4), (101, 37)), ((1, 1), (32, 32))])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_matches_reference(grid_hw, input_hw, dtype):
    gen = torch.Generator().manual_seed(sum(grid_hw) + sum(input_hw))
    images = []
    for k in (50, 0, 7):
        # Corners up to 20% beyond the input on each side, some boxes tiny.
        xy = torch.rand(k, 2, 2, generator=gen) * 1.4 - 0.2
        wh = torch.rand(k, 1, 2, generator=gen) ** 3
        lo = xy.min(dim=1).values
        hi = torch.minimum(xy.max(dim=1).values, lo + wh[:, 0])
        box = torch.cat([lo, hi], dim=1) * torch.tensor(input_hw[::-1] * 2)
        images.append(box.to(dtype))
    # whole pixels: many corners on grid lines (ties)
    images.append(images[0].round())
    weight = disw_weights(images, grid_hw, input_hw)
    assert torch.equal(weight, disw_reference(images, grid_hw, input_hw))


@pytest.mark.parametrize('dtype', [torch.float16, torch.float32])
def test_scaling_in_float64_rounds_like_exact_rationals(dtype):
    """Both implementations scale a coordinate as ``x * h / H`` in float64:
    for float16 / float32 boxes, floor and ceil of that equal those of the
    exact rational x h / H, ties on grid lines included (docs/disw.md)."""
    gen = torch.Generator().manual_seed(0)
    coords = (torch.rand(300, generator=gen) * 1000 - 100).to(dtype)
    coords = torch.cat([coords, coords.round()]).double().tolist()
    for h, in_h in [(7, 100), (50, 800), (13, 101), (5, 33), (64, 64)]:
        for x in coords:
            exact = Fraction(x) * h / in_h
            assert math.floor(x * h / in_h) == math.floor(exact), (x, h)
            assert math.ceil(x * h / in_h) == math.ceil(exact), (x, h)


@pytest.mark.parametrize('dtype', [torch.float16, torch.float64, torch.int64])
def test_float32_whatever_the_box_dtype(disw, dtype):
    boxes = [boxes_of([8, 16, 20, 22], [2, 3, 30, 11], dtype=dtype)]
    weight = disw(boxes, (4, 4), (32, 32))
    assert weight.dtype == torch.float32
    assert torch.equal(
        weight, disw([b.float() for b in boxes], (4, 4), (32, 32)))


def test_box_structures(disw):
    box = torch.tensor([[9., 17., 20., 22.]])
    assert torch.equal(disw([HorizontalBoxes(box)], (4, 4), (32, 32)),
                       disw([box], (4, 4), (32, 32)))


def test_large_boxes_keep_their_weight(disw):
    # rows / cols 0 .. ceil(50) = 50: A = 51 * 51 = 2601 > 2048, where the
    # release's float16 map rounds 1 + 1/A to 1.
    weight = disw([boxes_of([0, 0, 50, 50])], (64, 64), (64, 64))
    value = torch.tensor(1 + 1 / 2601, dtype=torch.float32)
    assert value != 1
    assert torch.tensor(1 + 1 / 2601, dtype=torch.float16) == 1
    assert torch.equal(weight[0, 0, :51, :51], value.expand(51, 51))
    assert (weight[0, 0, 51:] == 1).all() and (weight[0, 0, :, 51:] == 1).all()


def test_many_boxes_keep_mass_and_stay_above_one(disw):
    gen = torch.Generator().manual_seed(0)
    # Boxes 100 .. 300 px wide from anywhere in [-100, 700]^2: every cell
    # of the 800 x 800 input is covered, many boxes leave the input.
    lo = torch.rand(3000, 2, generator=gen) * 800 - 100
    size = 100 + torch.rand(3000, 2, generator=gen) * 200
    boxes = torch.cat([lo, lo + size], dim=1)
    weight = disw([boxes, boxes[:1000]], (100, 100), (800, 800))
    assert weight.dtype == torch.float32
    assert (weight > 1).all()
    mass = (weight.double() - 1).sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        mass, torch.tensor([3000., 1000.], dtype=torch.float64), rtol=1e-6,
        atol=0)


def test_keeps_device():
    weight = disw_weights([torch.zeros(2, 4, device='meta')], (4, 4), (8, 8))
    assert weight.device.type == 'meta' and weight.shape == (1, 1, 4, 4)


@pytest.mark.parametrize('bad,found', [
    (torch.zeros(4), r'\(4,\)'), (torch.zeros(0), r'\(0,\)'),
    (torch.zeros(2, 6), r'\(2, 6\)'), (torch.zeros(1, 2, 4), r'\(1, 2, 4\)'),
    ([[0, 0, 1, 1]], 'list')])
def test_bad_box_shapes(bad, found):
    with pytest.raises(ValueError, match=rf'boxes\[1\] must be a \[K, 4\] '
                       rf'tensor.*{found}'):
        disw_weights([torch.zeros(0, 4), bad], (4, 4), (32, 32))


@pytest.mark.parametrize('grid_hw,input_hw,name', [
    ((0, 4), (32, 32), 'grid_hw'), ((4, -1), (32, 32), 'grid_hw'),
    ((4.5, 4), (32, 32), 'grid_hw'), ((4, ), (32, 32), 'grid_hw'),
    ((4, 4), (0, 32), 'input_hw'), ((4, 4), (32, -3.0), 'input_hw'),
    ((4, 4), (32, 32, 3), 'input_hw')])
def test_bad_sizes(grid_hw, input_hw, name):
    with pytest.raises(ValueError, match=rf'{name} must be two positive'):
        disw_weights([torch.zeros(1, 4)], grid_hw, input_hw)
