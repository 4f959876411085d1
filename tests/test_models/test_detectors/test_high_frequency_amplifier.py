"""HighFrequencyAmplifier: a tiny RetinaNet whose frozen backbone and neck
feed HF(F) to a trainable head, initialised from a teacher checkpoint."""
import copy

import pytest
import torch
from mmdet.models.detectors import RetinaNet
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.runner.checkpoint import CheckpointLoader

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.ops import high_frequency

from ...conftest import (requires_mmrotate, shrink_dense_detector,
                         upstream_config)

RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
IMAGENET = dict(type='Pretrained', checkpoint='torchvision://resnet18')


class DownloadAttempted(AssertionError):
    pass


@pytest.fixture(scope='module')
def detector_cfg():
    """Config of a tiny RetinaNet (no pretrained weights)."""
    register_all_modules(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(RETINANET).model)
    cfg['_scope_'] = 'mmdet'  # whatever the default scope of the session
    return cfg


@pytest.fixture(scope='module')
def plain(detector_cfg):
    """A plain tiny RetinaNet with initialised weights (the teacher)."""
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(detector_cfg))
    model.init_weights()
    with torch.no_grad():  # no zero-initialised layers: a visible check
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope='module')
def data(plain):
    batch = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                           num_items=[3, 2], num_classes=3)
    return plain.data_preprocessor(batch, True)


@pytest.fixture
def no_download(monkeypatch):
    """Every remote checkpoint scheme (torchvision://, http://, ...) fails
    loudly instead of downloading."""

    def refuse(filename, *args, **kwargs):
        raise DownloadAttempted(f'tried to download {filename}')

    for prefix in list(CheckpointLoader._schemes):
        if '://' in prefix:
            monkeypatch.setitem(CheckpointLoader._schemes, prefix, refuse)


def build(detector, **kwargs):
    return MODELS.build(dict(type='HighFrequencyAmplifier', _scope_='mmdet',
                             detector=copy.deepcopy(detector), **kwargs))


def test_is_a_high_frequency_retinanet(detector_cfg):
    model = build(detector_cfg, wavelet='haar')
    assert isinstance(model, RetinaNet)
    assert type(model).__name__ == 'HighFrequencyRetinaNet'
    assert model.hf_wavelet == 'haar'
    # the same class for every build (a cached subclass)
    assert type(build(detector_cfg)) is type(model)


def test_state_dict_keys_equal_plain_detector(detector_cfg, plain):
    model = build(detector_cfg)
    keys = list(model.state_dict())
    assert keys == list(plain.state_dict())
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}


@pytest.mark.parametrize('wavelet', ['haar', 'db2'])
def test_extract_feat_is_the_high_frequency_view(detector_cfg, plain, data,
                                                 wavelet):
    model = build(detector_cfg, wavelet=wavelet)
    model.load_state_dict(plain.state_dict())
    model.eval()
    plain.eval()
    inputs = data['inputs']
    with torch.no_grad():
        feats = plain.extract_feat(inputs)
    expected = tuple(high_frequency(f, wavelet) for f in feats)
    out = model.extract_feat(inputs)
    assert isinstance(out, tuple) and len(out) == len(expected) == 5
    for got, exp, f in zip(out, expected, feats):
        assert got.shape == f.shape
        torch.testing.assert_close(got, exp)
        assert not torch.allclose(got, f)  # not the plain features
    assert all(not f.requires_grad for f in out)  # frozen parts: no graph


def test_backbone_and_neck_frozen_head_trainable(detector_cfg):
    model = build(detector_cfg)
    for part in (model.backbone, model.neck):
        params = list(part.parameters())
        assert params and all(not p.requires_grad for p in params)
    head = list(model.bbox_head.parameters())
    assert head and all(p.requires_grad for p in head)


def test_train_keeps_backbone_and_neck_in_eval(detector_cfg):
    model = build(detector_cfg)  # norm_eval=False in the tiny backbone
    returned = model.train()
    assert returned is model and model.training
    for part in (model.backbone, model.neck):
        assert all(not m.training for m in part.modules())
    assert all(m.training for m in model.bbox_head.modules())
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert not model.backbone.training and model.bbox_head.training


def test_train_step_updates_only_the_head(detector_cfg, plain, data):
    model = build(detector_cfg)
    model.load_state_dict(plain.state_dict())
    model.train()
    running = {k: v.clone() for k, v in model.backbone.state_dict().items()
               if 'running' in k}
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    total = sum(sum(v) if isinstance(v, list) else v
                for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    head = list(model.bbox_head.parameters())
    assert all(p.grad is not None for p in head)
    assert sum(p.grad.abs().sum() for p in head) > 0
    for part in (model.backbone, model.neck):
        assert all(p.grad is None for p in part.parameters())
    # BN in eval: the backbone's running statistics did not move
    for k, v in running.items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_missing_teacher_ckpt_names_stage_1(detector_cfg, tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='stage 1') as info:
        build(detector_cfg, teacher_ckpt=missing)
    assert missing in str(info.value)


def test_download_guard_is_effective(detector_cfg, no_download):
    """Without teacher_ckpt the ImageNet init_cfg stays and would
    download: the guard used below catches it."""
    cfg = copy.deepcopy(detector_cfg)
    cfg.backbone.init_cfg = IMAGENET
    model = build(cfg)
    assert model.backbone.init_cfg == IMAGENET
    with pytest.raises(DownloadAttempted, match='resnet'):
        model.init_weights()


def test_init_from_teacher_ckpt(detector_cfg, plain, tmp_path, no_download):
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': plain.state_dict(), 'meta': {}}, path)
    cfg = copy.deepcopy(detector_cfg)
    cfg.backbone.init_cfg = IMAGENET
    model = build(cfg, teacher_ckpt=path)
    teacher = plain.state_dict()
    # loaded when built; init_weights (the Runner calls it) changes nothing
    # and downloads nothing (no_download would raise)
    for _ in range(2):
        weights = model.state_dict()
        assert list(weights) == list(teacher)
        for key, value in teacher.items():
            assert torch.equal(weights[key], value), key
        model.init_weights()
    assert cfg.backbone.init_cfg == IMAGENET  # the caller's cfg untouched


def test_teacher_ckpt_of_another_architecture_rejected(detector_cfg,
                                                       tmp_path):
    other = copy.deepcopy(detector_cfg)
    other.bbox_head.num_classes = 7
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': MODELS.build(other).state_dict()}, path)
    with pytest.raises(ValueError, match=r"model.teacher_ckpt '.*other.pth' "
                       r'does not fit the teacher architecture .*shape '
                       r'mismatches, e.g. bbox_head.retina_cls'):
        build(detector_cfg, teacher_ckpt=path)


@pytest.mark.parametrize('wavelet', ['nope', 'db99'])
def test_unknown_wavelet_rejected(detector_cfg, wavelet):
    with pytest.raises(ValueError, match=repr(wavelet)):
        build(detector_cfg, wavelet=wavelet)


def test_pickles_as_its_own_class(detector_cfg, plain):
    import pickle
    model = build(detector_cfg)
    model.load_state_dict(plain.state_dict())
    again = pickle.loads(pickle.dumps(model))
    assert type(again) is type(model)
    assert again.hf_wavelet == model.hf_wavelet
    for (key, a), b in zip(model.state_dict().items(),
                           again.state_dict().values()):
        assert torch.equal(a, b), key


@requires_mmrotate
def test_rotated_retinanet_amplifier_trains_its_head_on_hf_features():
    from mmrotate.registry import MODELS as ROT_MODELS
    from mmrotate.testing import demo_mm_inputs as rotated_inputs
    from mmrotate.utils import register_all_modules as register_rotated
    register_rotated(init_default_scope=False)
    cfg = shrink_dense_detector(upstream_config(
        'mmrotate::rotated_retinanet/'
        'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py').model)
    torch.manual_seed(0)
    plain = ROT_MODELS.build(dict(copy.deepcopy(cfg), _scope_='mmrotate'))
    plain.init_weights()
    # in MMRotate's scope, as the rotated configs build it
    model = ROT_MODELS.build(dict(type='mmdet.HighFrequencyAmplifier',
                                  _scope_='mmrotate', detector=cfg))
    assert type(model).__name__ == 'HighFrequencyRetinaNet'
    model.load_state_dict(plain.state_dict())
    data = rotated_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 2], num_classes=3, use_box_type=True)
    data = model.data_preprocessor(data, True)
    plain.eval()
    model.train()  # backbone and neck stay in eval
    with torch.no_grad():
        want = [high_frequency(f) for f in plain.extract_feat(data['inputs'])]
    for got, exp in zip(model.extract_feat(data['inputs']), want):
        torch.testing.assert_close(got, exp)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert sum(p.grad.abs().sum() for p in model.bbox_head.parameters()) > 0
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.neck.parameters())


# ----------------------------------------------------------------------------
# stage 3: only the heads


def test_heads_are_built_as_the_detector_builds_them(detector_cfg, plain,
                                                     data):
    from ds2d2_mmrazor.models.detectors import HighFrequencyHeads
    heads = HighFrequencyHeads.build(
        dict(type='HighFrequencyAmplifier', detector=detector_cfg,
             wavelet='db2'), ['bbox_head'])
    assert [name for name, _ in heads.named_children()] == ['bbox_head']
    assert heads.wavelet == 'db2'
    own = heads.state_dict()
    expected = {k: v for k, v in plain.state_dict().items()
                if k.startswith('bbox_head.')}
    assert set(own) == set(expected)
    heads.load_state_dict(expected)
    # the head got the detector's train / test settings
    assert heads.bbox_head.train_cfg == plain.bbox_head.train_cfg
    assert heads.bbox_head.test_cfg == plain.bbox_head.test_cfg
    with torch.no_grad():
        feats = plain.extract_feat(data['inputs'])
        view = heads.high_frequency_features(feats)
        for f, v in zip(feats, view):
            assert torch.equal(v, high_frequency(f, 'db2'))
        ours = heads.bbox_head(view)
        theirs = plain.bbox_head(view)
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        assert torch.equal(a, b)


def test_heads_of_a_built_amplifier_are_shared(detector_cfg):
    from ds2d2_mmrazor.models.detectors import HighFrequencyHeads
    model = build(detector_cfg, wavelet='haar')
    heads = HighFrequencyHeads.of(model, ['bbox_head'])
    assert heads.bbox_head is model.bbox_head and heads.wavelet == 'haar'


def test_heads_errors_name_what_is_missing(detector_cfg):
    from ds2d2_mmrazor.models.detectors import (HighFrequencyHeads,
                                                build_detector_part)
    with pytest.raises(ValueError, match=r"has no roi_head \(it has "
                       r"\['bbox_head'\]\)"):
        build_detector_part(detector_cfg, 'roi_head')
    with pytest.raises(ValueError, match="part must be 'bbox_head' or "
                       "'roi_head', got 'neck'"):
        build_detector_part(detector_cfg, 'neck')
    with pytest.raises(ValueError, match='stage-2 model config'):
        HighFrequencyHeads.build(detector_cfg, ['bbox_head'])
    with pytest.raises(ValueError):
        HighFrequencyHeads({}, wavelet='no-such-wavelet')
