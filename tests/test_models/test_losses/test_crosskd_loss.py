"""CrossKDLoss (CrossKD, arXiv 2306.11369) on a tiny RetinaHead, against
hand computations: the per-channel alignment, the teacher head's remaining
layers, and the loss as a slow loop over anchors (KD quality focal loss,
GIoU of decoded boxes weighted by the teacher's confidence, both zero on
ignored anchors' boxes, / avg_factor). Then the CrossKD peer configs, made
tiny, train an iteration."""
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS as DET_MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from torch import nn

from ds2d2_mmrazor.models.distillers import DS2D2Distiller
from ds2d2_mmrazor.models.losses import (Amplifier, CrossKDLoss, align_scale,
                                         cross_head, head_features,
                                         head_from)
from mmrazor.registry import MODELS

from ...conftest import make_dior

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PEERS = osp.join(REPO, 'configs', 'peers')
CLASSES, CHANNELS, STRIDES, SCALE = 2, 8, (8, 16), 4
NO_REG = dict(type='mmdet.GIoULoss', loss_weight=0.0)
NO_CLS = dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=0.0)


def retina_head(stacked_convs: int = 2) -> nn.Module:
    """A RetinaHead of 2 classes, 8 channels, one square anchor per
    location on 2 levels (strides 8, 16), lively random weights."""
    register_all_modules(init_default_scope=False)
    head = DET_MODELS.build(dict(
        type='mmdet.RetinaHead', num_classes=CLASSES, in_channels=CHANNELS,
        feat_channels=CHANNELS, stacked_convs=stacked_convs,
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=SCALE,
            scales_per_octave=1, ratios=[1.0], strides=list(STRIDES)),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss')))
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.2)
    return head.eval().requires_grad_(False)  # frozen, as DS2D2Distill


@pytest.fixture(scope='module')
def setup():
    """Teacher head and features; a differing student head and features
    (2 images, 32 px: levels 4x4 and 2x2); label weights with ignored
    anchors."""
    torch.manual_seed(0)
    teacher, student = retina_head(), retina_head()
    t_feats = tuple(torch.randn(2, CHANNELS, 32 // s, 32 // s)
                    for s in STRIDES)
    s_feats = tuple(0.5 * f + 0.3 * torch.randn_like(f) + 0.2
                    for f in t_feats)
    label_weights = [(torch.rand(2, (32 // s)**2) > 0.3).float()
                     for s in STRIDES]
    return dict(teacher=teacher, student=student, t_feats=t_feats,
                s_feats=s_feats, label_weights=label_weights, avg_factor=3)


def build(**kwargs) -> CrossKDLoss:
    return MODELS.build(dict(type='CrossKDLoss', _scope_='mmrazor', **kwargs))


def recorded(setup, index: int, feats=None):
    """What the recorders give for the student at ``index``: per level,
    its head's cls and reg conv ``index - 1`` outputs."""
    feats = setup['s_feats'] if feats is None else feats
    held = [head_features(setup['student'], f, index) for f in feats]
    return dict(student_cls_feats=[h[0] for h in held],
                student_reg_feats=[h[1] for h in held])


def run(loss, setup, s_feats=None, **kwargs):
    head = setup['teacher']
    loss.check_head(SimpleNamespace(bbox_head=head))
    if loss.reused_head_idx > 0 and 'student_cls_feats' not in kwargs:
        kwargs.update(recorded(setup, loss.reused_head_idx, s_feats))
    return loss(setup['s_feats'] if s_feats is None else s_feats,
                setup['t_feats'], setup['label_weights'],
                setup['avg_factor'], amplifier=Amplifier(head), **kwargs)


# ----------------------------------------------------------------------------
# by hand


def align_by_hand(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per channel c: (s_c - mean) / (std + 1e-6) * std_t + mean_t, stds
    with n - 1 (unbiased), over the N * H * W values."""
    out = torch.empty_like(s, dtype=torch.float64)
    for c in range(s.shape[1]):
        sv, tv = s[:, c].double().flatten(), t[:, c].double().flatten()
        s_mean, t_mean = sv.sum() / sv.numel(), tv.sum() / tv.numel()
        s_std = ((sv - s_mean)**2).sum().div(sv.numel() - 1).sqrt()
        t_std = ((tv - t_mean)**2).sum().div(tv.numel() - 1).sqrt()
        out[:, c] = (s[:, c] - s_mean) / (s_std + 1e-6) * t_std + t_mean
    return out


def conv_by_hand(module, x: torch.Tensor, activate: bool = True):
    """A ConvModule (3x3, no norm) or a Conv2d, with F.conv2d."""
    conv = getattr(module, 'conv', module)
    y = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(),
                 padding=1)
    return y.clamp(min=0) if activate else y


def cut_by_hand(head, x: torch.Tensor, index: int):
    """The head's branch features at ``index`` (activated conv outputs)."""
    feats = []
    for convs in (head.cls_convs, head.reg_convs):
        f = x.double()
        for conv in convs[:index]:
            f = conv_by_hand(conv, f)
        feats.append(f)
    return feats


def rest_by_hand(head, cls_feat, reg_feat, index: int):
    """The teacher head's convs from ``index`` on, then its predictors."""
    for conv in head.cls_convs[index:]:
        cls_feat = conv_by_hand(conv, cls_feat)
    for conv in head.reg_convs[index:]:
        reg_feat = conv_by_hand(conv, reg_feat)
    return (conv_by_hand(head.retina_cls, cls_feat, False),
            conv_by_hand(head.retina_reg, reg_feat, False))


def predictions_by_hand(setup, index: int, align: bool = True):
    """Per level: the cross head's (logits, deltas) and the teacher's."""
    teacher, out = setup['teacher'], []
    for s, t in zip(setup['s_feats'], setup['t_feats']):
        t_held = cut_by_hand(teacher, t, index)
        s_held = cut_by_hand(setup['student'], s, index)
        if align:
            s_held = [align_by_hand(a, b) for a, b in zip(s_held, t_held)]
        if index > 0:
            s_held = [f.clamp(min=0) for f in s_held]
        out.append((rest_by_hand(teacher, *s_held, index),
                    rest_by_hand(teacher, *t_held, index)))
    return out


def decode_by_hand(anchor, deltas):
    """DeltaXYWHBBoxCoder, means 0 and stds 1: log-size deltas clamped at
    |log(16 / 1000)|, no clipping to the image."""
    px, py = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    pw, ph = anchor[2] - anchor[0], anchor[3] - anchor[1]
    dx, dy, dw, dh = deltas
    limit = abs(math.log(16 / 1000))
    dw, dh = (min(max(d, -limit), limit) for d in (dw, dh))
    gx, gy = px + pw * dx, py + ph * dy
    gw, gh = pw * math.exp(dw), ph * math.exp(dh)
    return (gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2)


def giou_by_hand(a, b, eps=1e-6):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    union = max(area(a) + area(b) - iw * ih, eps)
    enclose = max((max(a[2], b[2]) - min(a[0], b[0])) *
                  (max(a[3], b[3]) - min(a[1], b[1])), eps)
    iou = iw * ih / union
    return iou - (enclose - union) / enclose


def loss_by_hand(setup, index: int, align: bool = True,
                 mask_ignored: bool = True):
    """(cls, reg), a slow loop over images, levels, locations, classes."""
    cls_total = reg_total = 0.0
    preds = predictions_by_hand(setup, index, align)
    for level, stride in enumerate(STRIDES):
        (s_cls, s_reg), (t_cls, t_reg) = preds[level]
        size = s_cls.shape[-1]
        for n in range(s_cls.shape[0]):
            for y in range(size):
                for x in range(size):
                    weight = float(
                        setup['label_weights'][level][n, y * size + x])
                    z_s = s_cls[n, :, y, x].tolist()
                    z_t = t_cls[n, :, y, x].tolist()
                    for zs, zt in zip(z_s, z_t):
                        ps = 1 / (1 + math.exp(-zs))
                        pt = 1 / (1 + math.exp(-zt))
                        bce = -(pt * math.log(ps) +
                                (1 - pt) * math.log(1 - ps))
                        cls_total += weight * bce * abs(ps - pt)
                    half = SCALE * stride / 2
                    cx, cy = x * stride, y * stride
                    anchor = (cx - half, cy - half, cx + half, cy + half)
                    box_s = decode_by_hand(anchor, s_reg[n, :, y, x].tolist())
                    box_t = decode_by_hand(anchor, t_reg[n, :, y, x].tolist())
                    confidence = 1 / (1 + math.exp(-max(z_t)))
                    if mask_ignored and weight == 0:
                        confidence = 0.0
                    reg_total += confidence * (
                        1 - giou_by_hand(box_s, box_t))
    return (cls_total / setup['avg_factor'],
            reg_total / setup['avg_factor'])


# ----------------------------------------------------------------------------
# functions


def test_align_scale_equals_the_hand_formula(setup):
    s, t = setup['s_feats'][0], setup['t_feats'][0]
    aligned = align_scale(s, t)
    torch.testing.assert_close(aligned.double(), align_by_hand(s, t),
                               rtol=1e-5, atol=1e-5)
    # the teacher's per-channel mean and (unbiased) std
    torch.testing.assert_close(aligned.mean((0, 2, 3)), t.mean((0, 2, 3)),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(aligned.std((0, 2, 3)), t.std((0, 2, 3)),
                               rtol=1e-4, atol=1e-5)


def test_align_scale_gradient_goes_through_the_student_statistics(setup):
    s = setup['s_feats'][0].clone().requires_grad_(True)
    t = setup['t_feats'][0].clone().requires_grad_(True)
    align_scale(s, t).sum().backward()
    # the standardised values sum to 0 per channel: so does the gradient
    # of their sum, through the mean and std
    assert s.grad.abs().max() < 1e-3
    assert t.grad is None


def test_head_features_then_head_from_is_the_head(setup):
    head, x = setup['teacher'], setup['t_feats'][0]
    expected = head.forward_single(x)
    for index in range(len(head.cls_convs) + 1):
        out = head_from(head, *head_features(head, x, index), index)
        for a, b in zip(out, expected):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('index', [0, 1, 2])
@pytest.mark.parametrize('align', [True, False])
def test_cross_head_runs_the_teachers_remaining_layers(setup, index, align):
    """The student's features at ``index`` (aligned, ReLU for index > 0)
    through the teacher's convs from ``index`` on and its predictors."""
    teacher, student = setup['teacher'], setup['student']
    s, t = setup['s_feats'][0], setup['t_feats'][0]
    out = cross_head(teacher, head_features(student, s, index),
                     head_features(teacher, t, index), index, align)
    held = cut_by_hand(student, s, index)
    if align:
        t_held = cut_by_hand(teacher, t, index)
        held = [align_by_hand(a, b) for a, b in zip(held, t_held)]
    if index > 0:
        held = [f.clamp(min=0) for f in held]
    for a, b in zip(out, rest_by_hand(teacher, *held, index)):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5)


def test_recorded_conv_output_is_what_crosskd_holds(setup):
    """CrossKD's code holds conv k - 1's output before its activation, but
    ConvModule's ReLU runs in place, so the held tensor ends up activated:
    the ConvModule's output, which the configs record."""
    conv, x = setup['student'].cls_convs[0], setup['s_feats'][0]
    held = conv(x, activate=False)
    after = conv.activate(held)
    assert (held >= 0).all() and after.data_ptr() == held.data_ptr()
    torch.testing.assert_close(held, conv(x))


# ----------------------------------------------------------------------------
# the loss


@pytest.mark.parametrize('index', [0, 1, 2])
def test_loss_equals_the_hand_computation(setup, index):
    cls_hand, reg_hand = loss_by_hand(setup, index)
    assert cls_hand > 0 and reg_hand > 0
    cls = run(build(reused_head_idx=index, reg_loss=NO_REG), setup)
    reg = run(build(reused_head_idx=index, cls_loss=NO_CLS), setup)
    both = run(build(reused_head_idx=index, loss_weight=2.0), setup)
    assert cls.item() == pytest.approx(cls_hand, rel=1e-4)
    assert reg.item() == pytest.approx(reg_hand, rel=1e-4)
    assert both.item() == pytest.approx(2 * (cls_hand + reg_hand), rel=1e-4)
    # CrossKD leaves the boxes of ignored anchors out; DS2D2 does not
    _, reg_all = loss_by_hand(setup, index, mask_ignored=False)
    assert reg_all > reg_hand * 1.05


def test_loss_without_alignment_equals_the_hand_computation(setup):
    cls_hand, reg_hand = loss_by_hand(setup, 1, align=False)
    value = run(build(reused_head_idx=1, align_scale=False), setup)
    assert value.item() == pytest.approx(cls_hand + reg_hand, rel=1e-4)


def test_defaults_are_crosskds_retinanet_recipe():
    loss = build()
    assert (loss.reused_head_idx, loss.align_scale) == (3, True)
    assert loss.amplifier == 'teacher' and loss.reg_on_ignored is False
    assert (loss.cls_loss.beta, loss.cls_loss.loss_weight) == (1.0, 1.0)
    assert type(loss.reg_loss).__name__ == 'GIoULoss'
    assert (loss.reg_loss.loss_weight, loss.loss_weight) == (1.0, 1.0)


def test_zero_when_the_student_is_the_teacher(setup):
    same = dict(setup, student=setup['teacher'],
                s_feats=tuple(f.clone() for f in setup['t_feats']))
    for index in (0, 1):
        plain = run(build(reused_head_idx=index, align_scale=False), same)
        assert abs(plain.item()) < 1e-6
        # aligned to itself, up to the eps added to the std
        aligned = run(build(reused_head_idx=index), same)
        assert abs(aligned.item()) < 1e-4


@pytest.mark.parametrize('index', [0, 1])
def test_gradients_reach_the_student_only(setup, index):
    leaf = lambda fs: [f.clone().requires_grad_(True) for f in fs]  # noqa
    s_feats, t_feats = leaf(setup['s_feats']), leaf(setup['t_feats'])
    held = {k: leaf(v) for k, v in recorded(setup, max(index, 1)).items()}
    head = setup['teacher']
    loss = build(reused_head_idx=index)
    value = loss(s_feats, t_feats, setup['label_weights'],
                 setup['avg_factor'], Amplifier(head),
                 **(held if index else {}))
    value.backward()
    student = s_feats if index == 0 else \
        held['student_cls_feats'] + held['student_reg_feats']
    assert all(f.grad is not None and f.grad.abs().sum() > 0
               for f in student)
    assert all(f.grad is None for f in t_feats)
    assert all(p.grad is None for p in head.parameters())
    assert list(loss.parameters()) == []


# ----------------------------------------------------------------------------
# errors


@pytest.mark.parametrize('index', [-1, 1.0, True, '3'])
def test_bad_index_rejected(index):
    with pytest.raises(ValueError, match='reused_head_idx must be an int'):
        build(reused_head_idx=index)


def test_index_beyond_the_heads_convs(setup):
    with pytest.raises(ValueError, match=r'reused_head_idx=3 but the '
                       r'teacher head has 2 stacked convs: choose 0 to 2'):
        build(reused_head_idx=3).check_head(
            SimpleNamespace(bbox_head=setup['teacher']))
    build(reused_head_idx=2).check_head(
        SimpleNamespace(bbox_head=setup['teacher']))


def test_head_without_retina_layers(setup):
    head = setup['teacher']
    odd = SimpleNamespace(**{k: getattr(head, k) for k in (
        'bbox_coder', 'prior_generator', 'cls_out_channels',
        'use_sigmoid_cls', 'cls_convs', 'reg_convs')})
    with pytest.raises(TypeError, match='no retina_cls, retina_reg'):
        build(reused_head_idx=0).check_head(SimpleNamespace(bbox_head=odd))


def test_amplifier_is_always_the_teacher():
    with pytest.raises(TypeError, match='amplifier'):
        build(amplifier='high_frequency')


def test_missing_recorded_features(setup):
    loss = build(reused_head_idx=1)
    with pytest.raises(ValueError, match=r'needs student_cls_feats, one '
                       r'record per FPN level \(2\); found nothing: record '
                       r"the student's bbox_head.cls_convs.0 with "
                       'ModuleOutputs and map it with record_idx=None'):
        run(loss, setup, student_cls_feats=None,
            student_reg_feats=recorded(setup, 1)['student_reg_feats'])
    feats = recorded(setup, 1)
    with pytest.raises(ValueError, match='found 1 records'):
        run(loss, setup, student_cls_feats=feats['student_cls_feats'][:1],
            student_reg_feats=feats['student_reg_feats'])
    with pytest.raises(ValueError, match='found one tensor'):
        run(loss, setup, student_cls_feats=feats['student_cls_feats'][0],
            student_reg_feats=feats['student_reg_feats'])


def test_recorded_features_of_another_shape(setup):
    feats = recorded(setup, 1)
    wide = [torch.cat([f, f], 1) for f in feats['student_reg_feats']]
    with pytest.raises(ValueError, match=r"student_reg_feats\[0\] is "
                       r"\(2, 16, 4, 4\) but the teacher's "
                       r'bbox_head.reg_convs.0 gives \(2, 8, 4, 4\)'):
        run(build(reused_head_idx=1), setup,
            student_cls_feats=feats['student_cls_feats'],
            student_reg_feats=wide)


def test_align_scale_errors():
    with pytest.raises(ValueError, match=r'found student \(1, 4, 2, 2\), '
                       r'teacher \(1, 8, 2, 2\)'):
        align_scale(torch.zeros(1, 4, 2, 2), torch.zeros(1, 8, 2, 2))
    with pytest.raises(ValueError, match='at least 2 values per channel'):
        align_scale(torch.zeros(1, 4, 1, 1), torch.zeros(1, 4, 1, 1))


# ----------------------------------------------------------------------------
# the distiller hands every record over


def test_distiller_passes_every_record_with_record_idx_none(setup):
    model = nn.Module()
    model.bbox_head = setup['student']
    distiller = DS2D2Distiller(  # MMRazor's recorder, whatever the scope
        student_recorders=dict(cls_feat=dict(
            type='mmrazor.ModuleOutputs', source='bbox_head.cls_convs.1')))
    distiller.prepare_from_student(model)
    with distiller.student_recorders:
        model.bbox_head(setup['s_feats'])
    records = distiller.get_record('cls_feat', True, record_idx=None)
    expected = recorded(setup, 2)['student_cls_feats']
    assert len(records) == len(expected) == 2  # one per FPN level
    for a, b in zip(records, expected):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(
        distiller.get_record('cls_feat', True, record_idx=1), expected[1])


# ----------------------------------------------------------------------------
# the peer configs, tiny, train an iteration


@pytest.fixture(scope='module')
def dior(tmp_path_factory):
    return make_dior(str(tmp_path_factory.mktemp('crosskd') / 'DIOR'),
                     num_trainval=2, num_test=0) + '/'


@pytest.mark.parametrize('head_convs', [2, 1])
@pytest.mark.parametrize('name,index', [('crosskd', 3), ('crosskd-idx0', 0)])
def test_tiny_peer_config_trains_an_iteration(name, index, head_convs, dior,
                                              tmp_path):
    from mmengine.runner import Runner

    from synthetic.tiny import tiny_config
    path = osp.join(PEERS, f'{name}_retina_r18_r101_dior.py')
    recipe = Config.fromfile(path, format_python_code=False)
    assert recipe.model.type == 'DS2D2Distill'
    assert recipe.model.amplifier is None
    loss_cfg = recipe.model.distiller.distill_losses.loss_crosskd
    assert loss_cfg.reused_head_idx == index
    cfg = tiny_config(path, dior, str(tmp_path), head_convs=head_convs)
    model = cfg.model
    for detector in (model.architecture, model.teacher):
        assert detector.bbox_head.stacked_convs == head_convs
    tiny_index = min(index, head_convs - 1)
    distiller = model.distiller
    assert distiller.distill_losses.loss_crosskd.reused_head_idx == tiny_index
    inputs = distiller.loss_forward_mappings.loss_crosskd
    if tiny_index:
        assert distiller.student_recorders.cls_feat.source == \
            f'bbox_head.cls_convs.{tiny_index - 1}'
        assert distiller.student_recorders.reg_feat.source == \
            f'bbox_head.reg_convs.{tiny_index - 1}'
    else:
        assert 'student_cls_feats' not in inputs
        assert 'cls_feat' not in distiller.student_recorders
    cfg = Config(cfg.to_dict(), filename=path, format_python_code=False)
    model.teacher_ckpt = None
    cfg.model.teacher_ckpt = None
    for stage in ('val', 'test'):
        for key in ('cfg', 'dataloader', 'evaluator'):
            cfg[f'{stage}_{key}'] = None
    cfg.default_hooks.checkpoint = None
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    logged = runner.message_hub.log_scalars
    value = logged['train/distill.loss_crosskd'].current()
    assert math.isfinite(value) and value > 0
    assert math.isfinite(logged['train/loss'].current())


def test_recipe_distils_the_students_first_convs_only(dior, tmp_path):
    """Tiny, 2-conv heads (index 1): the CrossKD term trains the student's
    backbone, FPN and head conv 0, through the recorded features; not its
    conv 1 or predictors (the teacher's run there), nor the teacher."""
    from mmdet.testing import demo_mm_inputs

    from synthetic.tiny import tiny_config
    cfg = tiny_config(osp.join(PEERS, 'crosskd_retina_r18_r101_dior.py'),
                      dior, str(tmp_path), head_convs=2)
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=2, image_shapes=(3, 64, 64), num_items=[3, 1],
        num_classes=3), True)
    losses = model(**data, mode='loss')
    losses['distill.loss_crosskd'].backward()
    head = model.student.bbox_head
    for conv in (head.cls_convs[0], head.reg_convs[0],
                 model.student.neck.fpn_convs[0]):
        assert conv.conv.weight.grad.abs().sum() > 0
    for layer in (head.cls_convs[1].conv, head.retina_cls,
                  head.retina_reg):
        assert layer.weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())
