"""DS2D2 on awkward batches: images without objects, degenerate boxes,
boxes partly or wholly outside the image, one huge box, thousands of boxes,
odd and 1x1 feature maps, all mixed in one batch; and under bfloat16
autocast. Every term stays finite; an image without objects contributes the
unweighted band error (DISW = 1) and all-negative amplifier targets.

Zero-width / zero-height ground truth makes MMDetection's own box targets
infinite (log 0 in the delta coder): the repository's train pipelines drop
such boxes with MMDetection's FilterAnnotations (tested in test_configs);
the distillation terms are finite with or without them."""
import copy

import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

import sys

from ds2d2_mmrazor.ops import dwt2d

from .conftest import build

TERMS = ('distill.loss_low', 'distill.loss_high', 'distill.loss_amp_full',
         'distill.loss_amp_high')
H, W = 96, 40  # padded to 96 x 64: FPN maps 12x8, 6x4, 3x2, 2x1, 1x1


def sample(boxes, labels=None):
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if labels is None:
        labels = torch.arange(len(boxes)) % 3
    s = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                    scale_factor=(1., 1.)))
    s.gt_instances = InstanceData(bboxes=HorizontalBoxes(boxes),
                                  labels=labels)
    return s


def awkward_batch(algo, g):
    xy = torch.rand(3000, 2, generator=g) * torch.tensor([W, H])
    wh = 1 + torch.rand(3000, 2, generator=g) * 10
    samples = [
        sample([]),                                   # no objects
        sample([[5, 5, 5, 30],                        # zero width
                [10, 20, 30, 20],                     # zero height
                [-10, -10, 15, 12],                   # partly outside
                [200, 300, 260, 340],                 # wholly outside
                [30, 60, 55, 120]]),                  # beyond the bottom
        sample([[-50, -50, 500, 500]]),               # one huge box
        sample(torch.cat([xy, xy + wh], dim=1)),      # thousands
    ]
    inputs = [torch.randint(0, 256, (3, H, W), generator=g,
                            dtype=torch.uint8) for _ in samples]
    return algo.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                  True)


@pytest.fixture(scope='module')
def algo(algo_cfg):
    torch.manual_seed(0)
    algo = build(algo_cfg)
    algo.init_weights()
    algo.train()
    return algo


def check_finite(losses, keys=None):
    for key in keys or losses:
        value = losses[key]
        for v in value if isinstance(value, list) else [value]:
            assert torch.isfinite(v).all(), key


def drop_degenerate(data):
    """What the configs' FilterAnnotations(min_gt_bbox_wh=(1e-2, 1e-2))
    does."""
    for s in data['data_samples']:
        b = s.gt_instances.bboxes  # a tensor after the data preprocessor
        keep = (b[:, 2] - b[:, 0] > 1e-2) & (b[:, 3] - b[:, 1] > 1e-2)
        s.gt_instances = s.gt_instances[keep]
    return data


def test_awkward_batch_gives_finite_terms_and_gradients(algo):
    data = awkward_batch(algo, torch.Generator().manual_seed(0))
    assert data['inputs'].shape[-2:] == (96, 64)
    algo.zero_grad()
    losses = algo(**data, mode='loss')
    check_finite(losses, TERMS)
    # MMDetection's own bbox loss: inf on zero-size boxes
    assert not torch.isfinite(sum(losses['student.loss_bbox']))
    shapes = [tuple(f.shape[-2:]) for f in algo.distiller.student_recorders
              .get_recorder('fpn').data_buffer[-1]]
    assert shapes == [(12, 8), (6, 4), (3, 2), (2, 1), (1, 1)]
    for key in TERMS:
        assert losses[key].item() > 0, key
    sum(losses[k] for k in TERMS).backward()
    grads = [p.grad for p in algo.student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # without the zero-size boxes every loss is finite
    losses = algo(**drop_degenerate(data), mode='loss')
    check_finite(losses)


def test_image_without_objects_contributes_plain_band_error(algo):
    g = torch.Generator().manual_seed(1)
    data = awkward_batch(algo, g)
    data = dict(inputs=data['inputs'][:1],
                data_samples=data['data_samples'][:1])
    with torch.no_grad():
        losses = algo(**data, mode='loss')
        s_fpn = algo.distiller.student_recorders.get_recorder(
            'fpn').data_buffer[-1]
        t_fpn = algo.distiller.teacher_recorders.get_recorder(
            'fpn').data_buffer[-1]
        bands = algo.distiller.connectors['student_bands'](s_fpn)
        low = sum(((b[0] - dwt2d(t, 'haar')[0])**2).mean()
                  for b, t in zip(bands, t_fpn))
    weight = algo.distiller.distill_losses['loss_spectral'].low_weight
    torch.testing.assert_close(losses['distill.loss_low'], weight * low)
    # the student's own targets: every anchor negative, none ignored
    label_weights = algo.distiller.student_recorders.get_recorder(
        'targets').data_buffer[-1][1]
    assert all((w == 1).all() for w in label_weights)
    assert losses['distill.loss_amp_full'].item() > 0


def test_bfloat16_autocast_keeps_terms_finite_and_disw_float32(
        algo, monkeypatch):
    maps = []
    spectral = sys.modules['ds2d2_mmrazor.models.losses.disw_spectral_loss']
    real = spectral.disw_pyramid

    def recording(*args, **kwargs):
        maps.extend(real(*args, **kwargs))
        return maps[-5:]

    monkeypatch.setattr(spectral, 'disw_pyramid', recording)
    data = drop_degenerate(awkward_batch(algo,
                                         torch.Generator().manual_seed(2)))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = algo(**data, mode='loss')
    check_finite(losses)
    assert len(maps) == 5 and all(m.dtype == torch.float32 for m in maps)
    assert all(losses[k].dtype == torch.float32 for k in TERMS)
    sum(losses[k] for k in TERMS).backward()


def test_large_features_keep_terms_finite(algo_cfg):
    # a student whose FPN output is scaled up 1000x: logits of the bound
    # heads in the thousands, decoded boxes at the coder's clamp
    torch.manual_seed(3)
    algo = build(copy.deepcopy(algo_cfg))
    algo.init_weights()
    with torch.no_grad():
        for conv in algo.student.neck.fpn_convs:
            conv.conv.weight.mul_(1000)
    algo.train()
    data = drop_degenerate(awkward_batch(algo,
                                         torch.Generator().manual_seed(4)))
    losses = algo(**data, mode='loss')
    check_finite(losses)
    sum(losses[k] for k in TERMS).backward()
    assert all(torch.isfinite(p.grad).all() for p in algo.student.parameters()
               if p.grad is not None)
