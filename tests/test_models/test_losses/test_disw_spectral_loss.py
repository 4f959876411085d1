"""DISWSpectralLoss against a hand computation: bands from PyWavelets
(``pywt.dwt2``, mode='zero') and the DISW map from ``disw_reference``, the
per-box loop of the method doc's formula."""
import math

import numpy as np
import pytest
import pywt
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.models.losses import DISWSpectralLoss
from ds2d2_mmrazor.ops import disw_reference
from mmrazor.registry import MODELS

from ...conftest import requires_mmrotate

# Padded batch input (H, W), non-square with different scales per axis.
INPUT_HW = (24, 40)
# Image 0: three boxes (x1, y1, x2, y2), one clipped by the grid border and
# two overlapping; image 1: no boxes.
BOXES = [
    [[2.0, 3.0, 13.0, 9.0], [30.0, 10.0, 60.0, 30.0], [5.0, 5.0, 25.0, 12.0]],
    [],
]


def data_samples(boxes=BOXES, input_hw=INPUT_HW, box_type=None):
    samples = []
    for image_boxes in boxes:
        sample = DetDataSample()
        # img_shape / pad_shape deliberately differ from batch_input_shape:
        # the DISW map must use the padded batch input.
        sample.set_metainfo(dict(batch_input_shape=input_hw,
                                 img_shape=(7, 9), pad_shape=(8, 10)))
        bboxes = torch.tensor(image_boxes, dtype=torch.float32).reshape(-1, 4)
        if box_type is not None:
            bboxes = box_type(bboxes)
        sample.gt_instances = InstanceData(
            bboxes=bboxes, labels=torch.zeros(len(bboxes), dtype=torch.long))
        samples.append(sample)
    return samples


def pywt_bands(x: np.ndarray):
    """(cA, stack(cH, cV, cD) on axis 2) of [N, C, H, W] maps."""
    ca, (ch, cv, cd) = pywt.dwt2(x, 'haar', mode='zero', axes=(-2, -1))
    return ca, np.stack([ch, cv, cd], axis=2)


def as_torch(bands, requires_grad=False):
    low, high = bands
    return (torch.tensor(low, dtype=torch.float32,
                         requires_grad=requires_grad),
            torch.tensor(high, dtype=torch.float32,
                         requires_grad=requires_grad))


def reference_weight(boxes, grid_hw, input_hw) -> np.ndarray:
    """The [N, 1, h, w] DISW map of per-image box lists, as float64 numpy,
    from the slow per-box reference."""
    tensors = [torch.tensor(b, dtype=torch.float32).reshape(-1, 4)
               for b in boxes]
    return disw_reference(tensors, tuple(grid_hw), input_hw).double().numpy()


def hand_loss(student_maps, teacher_maps, boxes=BOXES, input_hw=INPUT_HW):
    """(L_low, L_high) of one level, in float64 numpy."""
    s_low, s_high = pywt_bands(student_maps)
    t_low, t_high = pywt_bands(teacher_maps)
    weight = reference_weight(boxes, s_low.shape[-2:], input_hw)
    low = np.mean(weight * (s_low - t_low)**2)
    high = np.mean(weight[:, :, None] * (s_high - t_high)**2)
    return low, high


def maps(seed, shape=(2, 3, 5, 8)):
    return np.random.default_rng(seed).standard_normal(shape)


def build(low_weight=1.0, high_weight=1.0) -> DISWSpectralLoss:
    return MODELS.build(dict(type='DISWSpectralLoss', _scope_='mmrazor',
                             low_weight=low_weight, high_weight=high_weight))


def test_disw_reference_by_hand():
    """The reference itself, on the fixed boxes, written out cell by cell
    (grid 3x4: s_y = 3/24, s_x = 4/40)."""
    weight = reference_weight(BOXES, (3, 4), INPUT_HW)
    expected = np.ones((2, 1, 3, 4))
    # box 1: rows 0..ceil(1.125)=2, cols 0..ceil(1.3)=2 -> 9 cells
    expected[0, 0, 0:3, 0:3] += 1 / 9
    # box 2: rows 1..4 -> 1..2, cols 3..6 -> 3..3 -> 2 cells
    expected[0, 0, 1:3, 3:4] += 1 / 2
    # box 3: rows 0..ceil(1.5)=2, cols 0..ceil(2.5)=3 -> 12 cells
    expected[0, 0, 0:3, 0:4] += 1 / 12
    # float32 map: equal to the float64 hand values up to rounding
    np.testing.assert_allclose(weight, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize('box_type', [None, HorizontalBoxes])
def test_one_level_equals_hand_computation(box_type):
    s_maps, t_maps = maps(0), maps(1)
    exp_low, exp_high = hand_loss(s_maps, t_maps)
    out = build()([as_torch(pywt_bands(s_maps))],
                  [as_torch(pywt_bands(t_maps))],
                  data_samples(box_type=box_type))
    assert set(out) == {'loss_low', 'loss_high'}
    assert out['loss_low'].shape == out['loss_high'].shape == ()
    assert out['loss_low'].dtype == torch.float32
    np.testing.assert_allclose(out['loss_low'].item(), exp_low, rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(), exp_high, rtol=1e-5)


def test_weighting_is_not_a_plain_mse():
    """The DISW map matters: the plain (W = 1) MSE differs."""
    s_maps, t_maps = maps(0), maps(1)
    out = build()([as_torch(pywt_bands(s_maps))],
                  [as_torch(pywt_bands(t_maps))], data_samples())
    s_low, _ = pywt_bands(s_maps)
    t_low, _ = pywt_bands(t_maps)
    assert abs(out['loss_low'].item() - np.mean((s_low - t_low)**2)) > 1e-4


def test_without_disw_is_the_plain_mse_of_the_bands():
    """disw=False (the paper's ablation): W = 1, so each term is the plain
    mean squared error of PyWavelets' bands, whatever the boxes."""
    s_maps, t_maps = maps(0), maps(1)
    loss = MODELS.build(dict(type='DISWSpectralLoss', _scope_='mmrazor',
                             low_weight=2.0, high_weight=3.0, disw=False))
    s_low, s_high = pywt_bands(s_maps)
    t_low, t_high = pywt_bands(t_maps)
    for samples in (data_samples(), None):  # boxes are not even needed
        out = loss([as_torch(pywt_bands(s_maps))],
                   [as_torch(pywt_bands(t_maps))], samples)
        np.testing.assert_allclose(out['loss_low'].item(),
                                   2.0 * np.mean((s_low - t_low)**2),
                                   rtol=1e-5)
        np.testing.assert_allclose(out['loss_high'].item(),
                                   3.0 * np.mean((s_high - t_high)**2),
                                   rtol=1e-5)


def test_connector_bands_give_the_same_value():
    """The pure-DWT WaveletConnector feeding the loss, as in the config."""
    s_maps, t_maps = maps(2), maps(3)
    connector = MODELS.build(dict(type='WaveletConnector', _scope_='mmrazor',
                                  wavelet='haar'))
    out = build()(connector([torch.tensor(s_maps, dtype=torch.float32)]),
                  connector([torch.tensor(t_maps, dtype=torch.float32)]),
                  data_samples())
    exp_low, exp_high = hand_loss(s_maps, t_maps)
    np.testing.assert_allclose(out['loss_low'].item(), exp_low, rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(), exp_high, rtol=1e-5)


def test_image_without_boxes_has_unit_weight():
    s_maps, t_maps = maps(4, (1, 2, 6, 6)), maps(5, (1, 2, 6, 6))
    out = build()([as_torch(pywt_bands(s_maps))],
                  [as_torch(pywt_bands(t_maps))], data_samples(boxes=[[]]))
    s_low, s_high = pywt_bands(s_maps)
    t_low, t_high = pywt_bands(t_maps)
    np.testing.assert_allclose(out['loss_low'].item(),
                               np.mean((s_low - t_low)**2), rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(),
                               np.mean((s_high - t_high)**2), rtol=1e-5)


def test_zero_when_bands_equal_and_positive_otherwise():
    s_maps, t_maps = maps(6), maps(7)
    loss = build()
    same = loss([as_torch(pywt_bands(t_maps))],
                [as_torch(pywt_bands(t_maps))], data_samples())
    assert same['loss_low'].item() == 0.0
    assert same['loss_high'].item() == 0.0
    differ = loss([as_torch(pywt_bands(s_maps))],
                  [as_torch(pywt_bands(t_maps))], data_samples())
    assert differ['loss_low'].item() > 0
    assert differ['loss_high'].item() > 0
    # a difference only in the high bands leaves the low term at 0
    t_low, t_high = as_torch(pywt_bands(t_maps))
    only_high = loss([(t_low.clone(), t_high + 0.5)], [(t_low, t_high)],
                     data_samples())
    assert only_high['loss_low'].item() == 0.0
    assert only_high['loss_high'].item() > 0


def test_sums_over_levels():
    levels = [((2, 3, 5, 8), 10), ((2, 3, 3, 4), 20), ((2, 3, 2, 2), 30)]
    student, teacher, exp_low, exp_high = [], [], 0.0, 0.0
    for shape, seed in levels:
        s_maps, t_maps = maps(seed, shape), maps(seed + 1, shape)
        student.append(as_torch(pywt_bands(s_maps)))
        teacher.append(as_torch(pywt_bands(t_maps)))
        low, high = hand_loss(s_maps, t_maps)
        exp_low += low
        exp_high += high
    loss = build()
    out = loss(student, teacher, data_samples())
    np.testing.assert_allclose(out['loss_low'].item(), exp_low, rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(), exp_high, rtol=1e-5)
    per_level = [loss([s], [t], data_samples())
                 for s, t in zip(student, teacher)]
    np.testing.assert_allclose(
        out['loss_low'].item(), sum(o['loss_low'].item() for o in per_level),
        rtol=1e-6)


def test_low_and_high_weights_scale_each_term():
    s_maps, t_maps = maps(8), maps(9)
    exp_low, exp_high = hand_loss(s_maps, t_maps)
    student = [as_torch(pywt_bands(s_maps))]
    teacher = [as_torch(pywt_bands(t_maps))]
    out = build(low_weight=0.25, high_weight=3.0)(student, teacher,
                                                  data_samples())
    np.testing.assert_allclose(out['loss_low'].item(), 0.25 * exp_low,
                               rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(), 3.0 * exp_high,
                               rtol=1e-5)
    off = build(low_weight=0, high_weight=2)(student, teacher,
                                             data_samples())
    assert off['loss_low'].item() == 0.0
    np.testing.assert_allclose(off['loss_high'].item(), 2 * exp_high,
                               rtol=1e-5)


def test_default_weights_are_the_release_ones():
    loss = MODELS.build(dict(type='DISWSpectralLoss', _scope_='mmrazor'))
    assert loss.low_weight == loss.high_weight == 1e-5


def test_gradient_reaches_student_bands_only():
    s_maps, t_maps = maps(10), maps(11)
    s_low, s_high = as_torch(pywt_bands(s_maps), requires_grad=True)
    t_low, t_high = as_torch(pywt_bands(t_maps), requires_grad=True)
    out = build(low_weight=2.0, high_weight=3.0)(
        [(s_low, s_high)], [(t_low, t_high)], data_samples())
    (out['loss_low'] + out['loss_high']).backward()
    assert t_low.grad is None and t_high.grad is None
    # d/ds mean(W (s - t)^2) = 2 W (s - t) / numel
    weight = torch.tensor(reference_weight(BOXES, s_low.shape[-2:],
                                           INPUT_HW),
                          dtype=torch.float32)
    torch.testing.assert_close(
        s_low.grad, 2.0 * 2 * weight * (s_low - t_low).detach() /
        s_low.numel(), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(
        s_high.grad, 3.0 * 2 * weight[:, :, None] *
        (s_high - t_high).detach() / s_high.numel(), rtol=1e-5, atol=1e-8)


def test_mismatched_channels_point_to_out_channels():
    student = [as_torch(pywt_bands(maps(12, (2, 4, 6, 6))))]
    teacher = [as_torch(pywt_bands(maps(13, (2, 3, 6, 6))))]
    with pytest.raises(ValueError, match='out_channels'):
        build()(student, teacher, data_samples())


def test_level_count_mismatch():
    bands = as_torch(pywt_bands(maps(14)))
    with pytest.raises(ValueError, match='2 FPN levels, the teacher 1'):
        build()([bands, bands], [bands], data_samples())


@pytest.mark.parametrize('name', ['low_weight', 'high_weight'])
@pytest.mark.parametrize('value', [-1.0, -1e-9, float('nan'), '1e-5', None,
                                   [1.0]])
def test_bad_weight_rejected_at_construction(name, value):
    with pytest.raises(ValueError, match=name):
        MODELS.build(
            dict(type='DISWSpectralLoss', _scope_='mmrazor', **{name: value}))


@requires_mmrotate
def test_rotated_ground_truth_uses_the_cell_centre_rule():
    from mmrotate.structures.bbox import RotatedBoxes

    # bands grid 3 x 4 over the 24 x 40 input: cell centres at y 4, 12, 20
    # and x 5, 15, 25, 35.
    rotated = [[15.0, 12.0, 12.0, 10.0, 0.0],  # holds centre (12, 15) only
               [30.0, 12.0, 20.0, 12.0, math.pi / 2]]  # y 2..22, x 24..36
    samples = data_samples()
    samples[0].gt_instances = InstanceData(
        bboxes=RotatedBoxes(torch.tensor(rotated)),
        labels=torch.zeros(2, dtype=torch.long))
    weight = np.ones((2, 1, 3, 4))
    weight[0, 0, 1, 1] += 1
    weight[0, 0, 0:3, 2:4] += 1 / 6
    s_maps, t_maps = maps(0), maps(1)
    (s_low, s_high), (t_low, t_high) = pywt_bands(s_maps), pywt_bands(t_maps)
    exp_low = np.mean(weight * (s_low - t_low)**2)
    exp_high = np.mean(weight[:, :, None] * (s_high - t_high)**2)
    out = build()([as_torch(pywt_bands(s_maps))],
                  [as_torch(pywt_bands(t_maps))], samples)
    np.testing.assert_allclose(out['loss_low'].item(), exp_low, rtol=1e-5)
    np.testing.assert_allclose(out['loss_high'].item(), exp_high, rtol=1e-5)
