"""tools/convert_to_student.py on a tiny stage-3 checkpoint written by
MMEngine's Runner (1 epoch of DS2D2 on generated DIOR-format data)."""
import importlib
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ds2d2_mmrazor.datasets import DIOR_CLASSES

from ..conftest import make_dior, shrink_dense_detector, tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')


@pytest.fixture(scope='module')
def tool():
    # tools/ is on the path (conftest)
    return importlib.import_module('convert_to_student')


@pytest.fixture(scope='module')
def stage3(tmp_path_factory):
    """A DS2D2 Runner checkpoint and the tiny student config that fits it."""
    root = tmp_path_factory.mktemp('convert')
    data = make_dior(str(root / 'DIOR')) + '/'
    cfg = tiny_config(
        osp.join(CONFIGS, 'ds2d2_retina_r18_r101_dior.py'), data,
        root / 'ds2d2')
    cfg.model.update(teacher_ckpt=None, amplifier_ckpt=None)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    # the student config, made tiny as the DS2D2 student was
    student = tiny_config(
        osp.join(CONFIGS, 'retinanet_r18_fpn_2x_dior.py'), data,
        root / 'student')
    shrink_dense_detector(student.model, num_classes=20, base_channels=8)
    student_cfg = str(root / 'student.py')
    student.dump(student_cfg)
    checkpoint = str(root / 'ds2d2' / 'epoch_1.pth')
    return dict(root=root, checkpoint=checkpoint, student_cfg=student_cfg,
                saved=torch.load(checkpoint, map_location='cpu'))


def test_keeps_the_student_weights_and_meta(tool, stage3):
    saved = stage3['saved']
    assert {'optimizer', 'message_hub', 'param_schedulers'} <= set(saved)
    converted = tool.extract_student_state(saved)
    assert set(converted) == {'meta', 'state_dict'}
    architecture = {k[len('architecture.'):]: v
                    for k, v in saved['state_dict'].items()
                    if k.startswith('architecture.')}
    assert architecture and set(converted['state_dict']) == set(architecture)
    for key, value in architecture.items():
        assert torch.equal(converted['state_dict'][key], value), key
    meta = converted['meta']
    assert meta['dataset_meta']['classes'] == DIOR_CLASSES
    for key in ('epoch', 'iter', 'seed', 'mmengine_version'):
        assert meta[key] == saved['meta'][key]
    # the saved config is now the student detector's
    cfg = Config.fromstring(meta['cfg'], file_format='.py')
    assert cfg.model.type == 'RetinaNet'
    assert cfg.model.backbone.base_channels == 8
    assert 'teacher' not in cfg.model


def test_teacher_part_and_student_prefix(tool, stage3):
    state = stage3['saved']['state_dict']
    teacher = tool.extract_detector(stage3['saved'], 'teacher')
    assert set(teacher['state_dict']) == {
        k[len('teacher.'):] for k in state if k.startswith('teacher.')}
    assert Config.fromstring(teacher['meta']['cfg'],
                             '.py').model.backbone.base_channels == 16
    renamed = {'state_dict': {'student.a': torch.ones(1),
                              'teacher.a': torch.zeros(1)}}
    converted = tool.extract_student_state(renamed)
    assert list(converted['state_dict']) == ['a']
    assert converted['meta'] == {}
    assert converted['state_dict']['a'] is renamed['state_dict']['student.a']


def test_a_plain_checkpoint_is_an_error_naming_its_keys(tool):
    plain = {'meta': {}, 'state_dict': {
        'backbone.conv1.weight': torch.ones(1),
        'backbone.bn1.weight': torch.ones(1),
        'bbox_head.retina_cls.bias': torch.ones(1)}}
    with pytest.raises(ValueError, match=(
            r'no student weights \(keys architecture\.\* or student\.\*\); '
            r'found backbone\.\* \(2\), bbox_head\.\* \(1\)\. A plain '
            'detector checkpoint needs no conversion')):
        tool.extract_student_state(plain)
    with pytest.raises(ValueError, match='part must be one of'):
        tool.extract_detector(plain, 'amplifier')


@pytest.fixture(scope='module')
def converted(tool, stage3):
    out = str(stage3['root'] / 'out' / 'student.pth')
    tool.main([stage3['checkpoint'], '--out', out])
    return out


def test_cli_writes_a_weights_only_checkpoint(converted, stage3):
    saved = torch.load(converted, map_location='cpu', weights_only=True)
    assert set(saved) == {'meta', 'state_dict'}
    assert len(saved['state_dict']) == sum(
        k.startswith('architecture.') for k in stage3['saved']['state_dict'])


def test_init_detector_loads_every_key(converted, stage3):
    from mmdet.apis import init_detector
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # e.g. "no dataset_meta: COCO"
        model = init_detector(stage3['student_cfg'], converted,
                              device='cpu')
    expected = torch.load(converted, map_location='cpu')['state_dict']
    state = model.state_dict()
    assert set(state) == set(expected)  # nothing missing or unexpected
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert model.dataset_meta['classes'] == DIOR_CLASSES


# DetInferencer builds the config's visualizer without a save_dir
@pytest.mark.filterwarnings('ignore:Failed to add')
def test_det_inferencer_predicts_with_class_names(converted, stage3):
    from mmdet.apis import DetInferencer
    # the repository's test pipeline, as is: it loads annotations when
    # there are some (for CocoMetric) and works on plain images
    config = stage3['student_cfg']
    inferencer = DetInferencer(model=config, weights=converted,
                               device='cpu', show_progress=False)
    assert inferencer.model.dataset_meta['classes'] == DIOR_CLASSES
    image = np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8)
    # mmdet 3.1 spells it return_datasample, 3.3 return_datasamples
    spelling = {'return_datasample', 'return_datasamples'} & \
        inferencer.postprocess_kwargs
    result = inferencer(image, no_save_vis=True, **dict.fromkeys(
        spelling, True))['predictions'][0]
    boxes = result.pred_instances.bboxes
    # the tiny config keeps every detection (score_thr 0) up to max_per_img
    test_cfg = Config.fromfile(config).model.test_cfg
    assert test_cfg.score_thr == 0 and len(boxes) == test_cfg.max_per_img
    assert boxes.min() >= 0 and boxes.max() <= 64
    # the same weights give the same prediction through init_detector
    from mmdet.apis import init_detector
    model = init_detector(config, converted, device='cpu')
    data = inferencer.pipeline(dict(img=image))
    with torch.no_grad():
        expected = model.test_step(dict(
            inputs=[data['inputs']], data_samples=[data['data_samples']]))[0]
    torch.testing.assert_close(boxes, expected.pred_instances.bboxes)
