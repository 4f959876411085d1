"""Bad DS2D2 configurations fail when the model is built (before training),
naming the field and the fix: FPN level / channel mismatches, adapters that
do not fit, checkpoints of another architecture, size or detector type."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config

from synthetic.tiny import shrink_detector
from mmrazor.registry import MODELS

from .conftest import build

FASTER_RCNN = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                       'faster-rcnn_r101_fpn_2x_dior.py')


def save(model_or_state, path, prefix=''):
    state = model_or_state if isinstance(model_or_state, dict) else \
        model_or_state.state_dict()
    torch.save({'state_dict': {prefix + k: v for k, v in state.items()},
                'meta': {}}, path)
    return str(path)


def detector(cfg):
    return DET_MODELS.build(dict(copy.deepcopy(cfg), _scope_='mmdet'))


# ----------------------------------------------------------------------------
# FPN shapes


def test_level_count_mismatch(algo_cfg):
    cfg = copy.deepcopy(algo_cfg)
    cfg.architecture.neck.num_outs = 4
    cfg.architecture.bbox_head.anchor_generator.strides = [8, 16, 32, 64]
    with pytest.raises(ValueError, match=r'student FPN has 4 levels .*'
                       r'architecture.neck.num_outs.*teacher 5 .*'
                       r'set architecture.neck.num_outs=5'):
        MODELS.build(cfg)


def test_channel_mismatch_with_amplifier_losses(algo_cfg):
    cfg = copy.deepcopy(algo_cfg)
    cfg.architecture.neck.out_channels = 8
    cfg.architecture.bbox_head.update(in_channels=8, feat_channels=8)
    cfg.distiller.connectors.student_bands.in_channels = 8
    with pytest.raises(ValueError, match=r'student FPN has 8 channels .*'
                       r'teacher 16 .*set architecture.neck.out_channels='
                       r'16'):
        MODELS.build(cfg)


def test_channel_mismatch_is_fine_with_an_adapter(algo_cfg):
    # the explicit stream alone: the adapter maps 8 -> 16 channels
    cfg = copy.deepcopy(algo_cfg)
    cfg.architecture.neck.out_channels = 8
    cfg.architecture.bbox_head.update(in_channels=8, feat_channels=8)
    cfg.distiller.connectors.student_bands.update(in_channels=8,
                                                  out_channels=16)
    for name in ('loss_amp_full', 'loss_amp_high'):
        del cfg.distiller.distill_losses[name]
        del cfg.distiller.loss_forward_mappings[name]
    algo = MODELS.build(cfg)
    adapter = algo.distiller.connectors['student_bands']
    assert (adapter.in_channels, adapter.out_channels) == (8, 16)
    # ... but not without one
    cfg.distiller.connectors.student_bands = dict(type='WaveletConnector')
    with pytest.raises(ValueError, match=r'loss_spectral compares 8-channel '
                       r'student bands .*16-channel teacher bands: give '
                       r'model.distiller.connectors.student_bands a 1x1 '
                       r'adapter, in_channels=8, out_channels=16'):
        MODELS.build(cfg)


@pytest.mark.parametrize('side,value,match', [
    ('in_channels', 32, r'student_bands.in_channels is 32 but the student '
     r'FPN has 16 channels: set in_channels=16'),
    ('out_channels', 32, r'compares 32-channel student bands'),
])
def test_adapter_that_does_not_fit(algo_cfg, side, value, match):
    cfg = copy.deepcopy(algo_cfg)
    cfg.distiller.connectors.student_bands[side] = value
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


# ----------------------------------------------------------------------------
# checkpoints


def test_checkpoint_of_another_size(algo_cfg, tmp_path):
    other = copy.deepcopy(algo_cfg.teacher)
    other.bbox_head.num_classes = 5  # e.g. a teacher trained elsewhere
    path = save(detector(other), tmp_path / 'teacher.pth')
    with pytest.raises(ValueError) as info:
        build(algo_cfg, teacher_ckpt=path)
    msg = str(info.value)
    assert f"model.teacher_ckpt '{path}' does not fit the teacher " \
        '(RetinaNet)' in msg
    assert 'shape mismatches, e.g. bbox_head.retina_cls' in msg
    assert 'num_classes' in msg and 'another detector type' not in msg


@pytest.fixture(scope='module')
def frcnn_ckpt(tmp_path_factory):
    """The checkpoint of a tiny Faster R-CNN: another detector type than
    the RetinaNet teacher and amplifier."""
    frcnn = shrink_detector(Config.fromfile(FASTER_RCNN).model, 3, 16, 16)
    return save(detector(frcnn), tmp_path_factory.mktemp('frcnn') /
                'frcnn.pth')


def test_checkpoint_of_another_detector_type(algo_cfg, frcnn_ckpt):
    path = frcnn_ckpt
    with pytest.raises(ValueError) as info:
        build(algo_cfg, teacher_ckpt=path)
    msg = str(info.value)
    assert 'missing keys: bbox_head.' in msg
    assert 'unexpected keys: ' in msg and 'roi_head.' in msg
    assert "the parts ['backbone', 'neck', 'roi_head', 'rpn_head'], the " \
        "teacher ['backbone', 'bbox_head', 'neck']: it belongs to another " \
        'detector type' in msg
    assert 'Point model.teacher_ckpt to a checkpoint trained with the ' \
        "teacher's config" in msg


def test_amplifier_checkpoint_of_another_detector_type(algo_cfg,
                                                       frcnn_ckpt):
    """Stage 3 loads only the amplifier's bbox_head entries; a checkpoint
    without them is refused, naming the parts on both sides."""
    path = frcnn_ckpt
    with pytest.raises(ValueError) as info:
        build(algo_cfg, amplifier_ckpt=path)
    msg = str(info.value)
    assert f"model.amplifier_ckpt '{path}' does not fit the high-frequency " \
        'amplifier (HighFrequencyHeads)' in msg
    assert 'missing keys: bbox_head.' in msg and 'unexpected' not in msg
    assert "the parts ['backbone', 'neck', 'roi_head', 'rpn_head'], the " \
        "high-frequency amplifier ['bbox_head']: it belongs to another " \
        'detector type' in msg


def test_stage_3_checkpoint_given_as_amplifier(algo_cfg, tmp_path):
    teacher = detector(algo_cfg.teacher)
    path = save(teacher, tmp_path / 'ds2d2.pth', prefix='teacher.')
    with pytest.raises(ValueError, match=r"model.amplifier_ckpt .* does not "
                       r'fit the high-frequency amplifier .*DS2D2Distill '
                       r'\(stage 3\) checkpoint'):
        build(algo_cfg, amplifier_ckpt=path)


def test_only_batch_counters_are_tolerated(algo_cfg, tmp_path):
    teacher = detector(algo_cfg.teacher)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(1.0)
    state = {k: v for k, v in teacher.state_dict().items()
             if not k.endswith('num_batches_tracked')}
    algo = build(algo_cfg, teacher_ckpt=save(state, tmp_path / 't.pth'))
    for key, value in state.items():
        assert torch.equal(algo.teacher.state_dict()[key], value), key
    # one weight less is not tolerated
    del state['neck.fpn_convs.0.conv.weight']
    with pytest.raises(ValueError, match=r'missing keys: '
                       r'neck.fpn_convs.0.conv.weight\.'):
        build(algo_cfg, teacher_ckpt=save(state, tmp_path / 'u.pth'))


@pytest.mark.parametrize('field,value,match', [
    ('wavelet', 'haarr', 'haarr'),
    ('low_weight', -1e-5, 'low_weight'),
    ('high_weight', float('nan'), 'high_weight'),
])
def test_bad_wavelet_and_weights(algo_cfg, field, value, match):
    cfg = copy.deepcopy(algo_cfg)
    if field == 'wavelet':
        cfg.distiller.connectors.student_bands.wavelet = value
    else:
        cfg.distiller.distill_losses.loss_spectral[field] = value
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


class _Payload:
    """Unpickles as os.system(...): arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def test_checkpoint_needing_code_is_refused_not_run(algo_cfg, tmp_path):
    marker = tmp_path / 'executed'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'x': _Payload(marker)}}, path)
    with pytest.raises(ValueError) as info:
        build(algo_cfg, teacher_ckpt=path)
    msg = str(info.value)
    assert msg.startswith(f"model.teacher_ckpt '{path}' was refused and "
                          'not loaded: unpickling it needs posix.system')
    assert 'could run arbitrary code' in msg
    assert not marker.exists()
