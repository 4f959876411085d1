"""The configs parse, state the paper's recipe, and fail early and clearly
when a stage's checkpoint is missing."""
import ast
import glob
import os
import os.path as osp
import re
import tempfile

import pytest
import torch
from mmengine.config import Config

import ds2d2_mmrazor  # noqa: F401

from .conftest import config_params, requires_mmrotate

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True))
DS2D2 = osp.join(REPO, 'configs', 'ds2d2_retina_r18_r101_dior.py')
AMPLIFIER = osp.join(REPO, 'configs',
                     'ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py')


@pytest.mark.parametrize('path', config_params(CONFIGS))
def test_config_parses_and_round_trips(path, tmp_path):
    cfg = Config.fromfile(path)
    cfg.dump(str(tmp_path / 'dumped.py'))
    again = Config.fromfile(str(tmp_path / 'dumped.py'))
    assert again.to_dict() == cfg.to_dict()
    if 'model' in cfg or 'train_dataloader' in cfg:  # not a fragment
        assert 'ds2d2_mmrazor' in cfg.custom_imports.imports


def test_ds2d2_retinanet_dior_states_the_release_recipe():
    cfg = Config.fromfile(DS2D2)
    model = cfg.model
    assert model.type == 'DS2D2Distill' and model._scope_ == 'mmrazor'
    assert model.architecture.backbone.depth == 18
    assert model.teacher.backbone.depth == 101
    assert model.amplifier.detector.backbone.depth == 101
    # real training keeps the ImageNet initialisation of the student
    assert model.architecture.backbone.init_cfg.checkpoint == \
        'torchvision://resnet18'
    losses = model.distiller.distill_losses
    assert (losses.loss_spectral.low_weight,
            losses.loss_spectral.high_weight) == (1e-5, 1e-5)
    assert losses.loss_amp_full.amplifier == 'teacher'
    assert losses.loss_amp_high.amplifier == 'high_frequency'
    assert losses.loss_amp_full.loss_weight == 1.0
    assert losses.loss_amp_high.loss_weight == 1.0
    adapter = model.distiller.connectors.student_bands
    assert (adapter.in_channels, adapter.out_channels,
            adapter.wavelet) == (256, 256, 'haar')
    # 2x schedule, SGD, lr 0.005 at 8 images a batch
    assert cfg.train_cfg.max_epochs == 24
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 500)
    assert steps.milestones == [16, 22]
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == \
        ('SGD', 0.005, 0.9, 1e-4)
    assert cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.datasets[0].type == 'DIORDataset'
    assert cfg.val_evaluator.type == 'CocoMetric'


def _build(cfg):
    from mmrazor.registry import MODELS
    return MODELS.build(cfg.model)


def test_missing_teacher_checkpoint_names_stage_1(tmp_path):
    cfg = Config.fromfile(DS2D2)
    cfg.model.teacher_ckpt = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError,
                       match=r"teacher_ckpt '.*missing\.pth' not found: "
                       r'train the teacher \(stage 1\) first with '
                       r'tools/train.py, or point to the file with '
                       r'--cfg-options model.teacher_ckpt=PATH'):
        _build(cfg)


def test_missing_amplifier_checkpoint_names_stage_2(tmp_path):
    (tmp_path / 'teacher.pth').write_bytes(b'')
    cfg = Config.fromfile(DS2D2)
    cfg.model.teacher_ckpt = str(tmp_path / 'teacher.pth')
    cfg.model.amplifier_ckpt = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError,
                       match=r'amplifier_ckpt .* train the high-frequency '
                       r'amplifier \(stage 2\) first'):
        _build(cfg)


def test_amplifier_config_without_teacher_checkpoint_names_stage_1():
    from mmdet.registry import MODELS
    cfg = Config.fromfile(AMPLIFIER)
    assert cfg.model.teacher_ckpt.startswith('work_dirs/')
    cfg.model.teacher_ckpt = '/nonexistent/teacher.pth'
    # in the config's scope, as the Runner builds it (whatever scope an
    # earlier test left)
    cfg.model['_scope_'] = cfg.default_scope
    with pytest.raises(FileNotFoundError, match='stage 1'):
        MODELS.build(cfg.model)


# every stage-3 config: ds2d2_<detector>_<student>_<teacher>_<dataset>.py
STAGE_3 = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'ds2d2_*.py'))
    if not osp.basename(p).startswith('ds2d2_amplifier_'))


@pytest.mark.parametrize('path', config_params(STAGE_3))
def test_missing_default_checkpoints_name_the_config_to_train(path):
    # run from an empty folder: the default work_dirs/... paths are missing
    cfg = Config.fromfile(path)
    for field in ('teacher_ckpt', 'amplifier_ckpt'):
        folder = osp.basename(osp.dirname(cfg.model[field]))
        assert osp.isfile(osp.join(REPO, 'configs', f'{folder}.py')), field
    cwd = os.getcwd()
    os.chdir(tempfile.mkdtemp())
    try:
        with pytest.raises(FileNotFoundError) as info:
            _build(cfg)
    finally:
        os.chdir(cwd)
    teacher = osp.basename(osp.dirname(cfg.model.teacher_ckpt))
    assert f'train the teacher (stage 1) first: `python tools/train.py ' \
        f'configs/{teacher}.py`' in str(info.value)


# the peers on FPN features (CrossKD, on the head, is tested in
# tests/test_models/test_losses/test_crosskd_loss.py)
PEERS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', 'peers',
                                             '*.py'))
               if not osp.basename(p).startswith('crosskd'))


@pytest.mark.parametrize('path', config_params(STAGE_3))
def test_disw_reads_the_batch_through_a_recorder(path):
    """DISW's ground-truth boxes and input shape come from the student's
    forward inputs (MMRazor's MethodInputs recorder), not from a side
    channel of the distiller."""
    distiller = Config.fromfile(path).model.distiller
    assert distiller.student_recorders.batch == dict(
        type='MethodInputs',
        source='mmdet.models.detectors.BaseDetector.forward')
    assert distiller.loss_forward_mappings.loss_spectral.data_samples == \
        dict(recorder='batch', from_student=True, data_idx=1)


@pytest.mark.parametrize('path', PEERS, ids=[osp.basename(p) for p in PEERS])
def test_peer_baseline_builds_and_distils_every_fpn_level(path, tmp_path):
    import torch
    from mmdet.testing import demo_mm_inputs
    from mmrazor.registry import MODELS

    from synthetic.tiny import tiny_config
    cfg = tiny_config(path, str(tmp_path), str(tmp_path), classes=(
        'vehicle', 'ship', 'storagetank'))
    assert cfg.model.teacher.backbone.depth == 18  # shrunk, no download
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # 256 px: the coarsest level (stride 128) is 2x2, so that CWD's spatial
    # softmax is not trivially 1 (a 1x1 map has zero divergence)
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=2, image_shapes=(3, 256, 256), num_items=[3, 1],
        num_classes=3), True)
    losses = model(**data, mode='loss')
    distill = {k: v for k, v in losses.items() if k.startswith('distill.')}
    assert len(distill) == 5  # one term per FPN level
    assert all(torch.isfinite(v) and v > 0 for v in distill.values()), distill
    sum(distill.values()).backward()
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('dataset,weights', [
    ('dior', (0.5, 0.5, 1e-5, 1e-5)),
    ('dota', (0.12, 1.2, 1.5e-3, 3e-3)),
])
def test_ds2d2_faster_rcnn_states_the_release_recipe(dataset, weights):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', f'ds2d2_faster-rcnn_r18_r101_{dataset}.py'))
    model = cfg.model
    assert (model.type, model.architecture.type, model.teacher.type) == \
        ('DS2D2Distill', 'FasterRCNN', 'FasterRCNN')
    assert (model.architecture.backbone.depth,
            model.teacher.backbone.depth) == (18, 101)
    losses = model.distiller.distill_losses
    assert (losses.loss_spectral.low_weight, losses.loss_spectral.high_weight,
            losses.loss_amp_full.loss_weight,
            losses.loss_amp_high.loss_weight) == weights
    # the release sums the KL term over the batch's 2 x 512 RoIs; the mean
    # used here is scaled back by R (weight 0.5 x R), the L1 term is not
    rois = 2 * model.architecture.train_cfg.rcnn.sampler.num
    for loss in (losses.loss_amp_full, losses.loss_amp_high):
        assert loss.type == 'RoIAmplifierLoss'
        assert loss.cls_loss == dict(type='mmrazor.KLDivergence', tau=3.0,
                                     reduction='batchmean',
                                     loss_weight=0.5 * rois)
        assert loss.reg_loss == dict(type='mmdet.L1Loss', loss_weight=1.0)
    # RoIs: the student's own sample of the iteration, for both amplifiers
    recorder = model.distiller.student_recorders.rois
    assert recorder.source.endswith('StandardRoIHead.bbox_loss')
    for name in ('loss_amp_full', 'loss_amp_high'):
        mapping = model.distiller.loss_forward_mappings[name]
        assert mapping.sampling_results == dict(
            recorder='rois', from_student=True, data_idx=1)
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert model.teacher.roi_head.bbox_head.num_classes == \
        (15 if dataset == 'dota' else 20)


@requires_mmrotate
@pytest.mark.parametrize('dataset,weights,classes', [
    ('dior-r', (0.5, 0.5, 1e-5, 1e-5), 20),
    ('dota', (0.12, 1.2, 1.5e-3, 3e-3), 15),
])
def test_ds2d2_oriented_rcnn_states_its_recipe(dataset, weights, classes):
    """Faster R-CNN's recipe of the same images (no release recipe), with
    the decoded-box KLD as the RoI amplifiers' reg term."""
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', f'ds2d2_oriented-rcnn-le90_r18_r101_{dataset}.py'))
    model = cfg.model
    assert cfg.default_scope == 'mmrotate'
    assert (model.architecture.backbone.depth,
            model.teacher.backbone.depth) == (18, 101)
    assert model.architecture.rpn_head.type == 'OrientedRPNHead'
    assert model.teacher.roi_head.bbox_head.predict_box_type == 'rbox'
    losses = model.distiller.distill_losses
    assert (losses.loss_spectral.low_weight, losses.loss_spectral.high_weight,
            losses.loss_amp_full.loss_weight,
            losses.loss_amp_high.loss_weight) == weights
    rois = 2 * model.architecture.train_cfg.rcnn.sampler.num
    for loss in (losses.loss_amp_full, losses.loss_amp_high):
        assert loss.type == 'RoIAmplifierLoss'
        assert loss.cls_loss.loss_weight == 0.5 * rois == 512
        assert loss.reg_loss == dict(
            type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
            sqrt=False, reduction='mean', loss_weight=1.0)
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    for detector in (model.architecture, model.teacher,
                     model.amplifier.detector):
        assert detector.roi_head.bbox_head.num_classes == classes
    assert model.teacher_ckpt == \
        f'work_dirs/oriented-rcnn-le90_r101_fpn_2x_{dataset}/epoch_24.pth'


def test_ds2d2_retinanet_dota_uses_the_release_dota_weights():
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'ds2d2_retina_r18_r101_dota.py'))
    losses = cfg.model.distiller.distill_losses
    assert (losses.loss_spectral.low_weight, losses.loss_spectral.high_weight,
            losses.loss_amp_full.loss_weight,
            losses.loss_amp_high.loss_weight) == (7e-5, 5e-5, 0.7, 0.5)
    assert cfg.model.teacher.bbox_head.num_classes == 15
    assert cfg.model.architecture.bbox_head.num_classes == 15
    assert cfg.model.amplifier.detector.bbox_head.num_classes == 15
    assert cfg.train_dataloader.dataset.ann_file == 'train/train.json'
    assert cfg.val_evaluator.type == 'CocoMetric'


ROTATED = sorted(glob.glob(osp.join(REPO, 'configs', '*rotated*.py')))
# dataset -> DS2D2 weights (low, high, full amp, HF amp), classes
ROTATED_RECIPES = {
    'dota': ((7e-5, 5e-5, 0.7, 0.5), 15),
    'dior-r': ((1e-5, 1e-5, 1.0, 1.0), 20),
}


@requires_mmrotate
@pytest.mark.parametrize('dataset', sorted(ROTATED_RECIPES))
def test_ds2d2_rotated_retinanet_states_the_recipe(dataset):
    weights, num_classes = ROTATED_RECIPES[dataset]
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', f'ds2d2_rotated-retina-le90_r18_r101_{dataset}.py'))
    model = cfg.model
    assert cfg.default_scope == 'mmrotate'
    assert (model.type, model._scope_) == ('DS2D2Distill', 'mmrazor')
    amplifier = model.amplifier
    assert (amplifier.type, amplifier.teacher_ckpt) == \
        ('mmdet.HighFrequencyAmplifier', None)
    detectors = (model.architecture, model.teacher, amplifier.detector)
    assert [d.backbone.depth for d in detectors] == [18, 101, 101]
    assert model.architecture.backbone.init_cfg.checkpoint == \
        'torchvision://resnet18'
    assert model.teacher.backbone.init_cfg.checkpoint == \
        'torchvision://resnet101'
    for detector in detectors:  # MMRotate's rotated RetinaNet, le90, rbox
        head = detector.bbox_head
        assert (detector.type, head.type, head.num_classes) == \
            ('mmdet.RetinaNet', 'mmdet.RetinaHead', num_classes)
        assert (head.anchor_generator.type,
                head.anchor_generator.angle_version) == \
            ('FakeRotatedAnchorGenerator', 'le90')
        assert (head.bbox_coder.type, head.bbox_coder.angle_version) == \
            ('DeltaXYWHTRBBoxCoder', 'le90')
        assert detector.train_cfg.assigner.iou_calculator.type == \
            'RBboxOverlaps2D'
    # each stage reads the checkpoint the previous stage's config writes
    assert model.teacher_ckpt == 'work_dirs/rotated-retinanet-le90_r101_' \
        f'fpn_2x_{dataset}/epoch_24.pth'
    assert model.amplifier_ckpt == 'work_dirs/ds2d2_amplifier_rotated-' \
        f'retinanet-le90_r101_fpn_2x_{dataset}/epoch_24.pth'
    stage2 = Config.fromfile(osp.join(
        REPO, 'configs',
        f'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_{dataset}.py'))
    assert stage2.model.teacher_ckpt == model.teacher_ckpt
    assert stage2.model.type == 'mmdet.HighFrequencyAmplifier'

    distiller = model.distiller
    assert distiller.student_recorders.fpn.source == 'neck'
    assert distiller.student_recorders.targets.source == \
        'mmdet.models.dense_heads.AnchorHead.get_targets'
    adapter = distiller.connectors.student_bands
    assert (adapter.type, adapter.in_channels, adapter.out_channels,
            adapter.wavelet) == ('WaveletConnector', 256, 256, 'haar')
    losses = distiller.distill_losses
    assert losses.loss_spectral.type == 'DISWSpectralLoss'
    assert (losses.loss_spectral.low_weight, losses.loss_spectral.high_weight,
            losses.loss_amp_full.loss_weight,
            losses.loss_amp_high.loss_weight) == weights
    for loss, amp in ((losses.loss_amp_full, 'teacher'),
                      (losses.loss_amp_high, 'high_frequency')):
        assert (loss.type, loss.amplifier) == ('DenseAmplifierLoss', amp)
        assert loss.reg_loss == dict(
            type='mmrotate.GDLoss', loss_type='kld', fun='log1p', tau=1.0,
            sqrt=False, reduction='mean', loss_weight=1.0)

    # 2x schedule, SGD, lr 0.005 at 8 images a batch, MMRotate's clipping
    assert cfg.train_cfg.max_epochs == 24
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 500, False)
    assert (steps.type, steps.milestones, steps.gamma, steps.end) == \
        ('MultiStepLR', [16, 22], 0.1, 24)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == \
        ('SGD', 0.005, 0.9, 1e-4)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    assert cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.val_evaluator.type == 'DOTAMetric'

    train, val = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
    if dataset == 'dota':  # split patches: train on train, evaluate on val
        assert (train.type, train.ann_file, train.img_shape) == \
            ('DOTAPatchDataset', 'train/annfiles/', (1024, 1024))
        assert (val.type, val.ann_file) == \
            ('DOTAPatchDataset', 'val/annfiles/')
    else:  # train on trainval, test on test, oriented XML
        assert [(d.type, d.ann_file) for d in train.datasets] == [
            ('DIORRDataset', 'ImageSets/Main/train.txt'),
            ('DIORRDataset', 'ImageSets/Main/val.txt')]
        assert (val.type, val.ann_file, val.ann_subdir) == (
            'DIORRDataset', 'ImageSets/Main/test.txt',
            'Annotations/Oriented Bounding Boxes')
    converted = [step.box_type_mapping for step in train.get(
        'datasets', [train])[0].pipeline if step.type == 'ConvertBoxType']
    assert converted == [dict(gt_bboxes='rbox')]


@pytest.mark.parametrize('path', config_params(ROTATED))
def test_rotated_config_builds_in_its_scope_and_computes_losses(path,
                                                                tmp_path):
    """Each rotated config, made tiny, builds as the Runner builds it (in
    MMRotate's default scope) and computes its losses on a batch of
    rotated boxes, one image without any."""
    from mmengine.registry import MODELS, DefaultScope
    from mmrotate.testing import demo_mm_inputs

    from synthetic.tiny import tiny_config
    cfg = tiny_config(path, str(tmp_path), str(tmp_path))
    for field in ('teacher_ckpt', 'amplifier_ckpt'):
        if field in cfg.model:
            cfg.model[field] = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    batch = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                           num_items=[3, 0], num_classes=15,
                           use_box_type=True)
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    expected = {'loss_cls', 'loss_bbox'}
    if 'architecture' in cfg.model:
        expected = {f'student.{k}' for k in expected} | {
            'distill.loss_low', 'distill.loss_high', 'distill.loss_amp_full',
            'distill.loss_amp_high'}
    assert set(losses) == expected
    for name, value in losses.items():
        value = sum(value) if isinstance(value, list) else value
        assert torch.isfinite(value), name


TOP_LEVEL = sorted(glob.glob(osp.join(REPO, 'configs', '*.py')) +
                   glob.glob(osp.join(REPO, 'configs', 'peers', '*.py')))


@pytest.mark.parametrize('path', config_params(TOP_LEVEL))
def test_every_stage_stops_on_nan_and_drops_zero_size_boxes(path):
    import numpy as np
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.registry import TRANSFORMS, DefaultScope

    cfg = Config.fromfile(path)
    assert dict(type='mmdet.StopOnInvalidLossHook') in cfg.custom_hooks
    dataset = cfg.train_dataloader.dataset
    for split in dataset.get('datasets', [dataset]):
        steps = [s for s in split.pipeline
                 if s.type.split('.')[-1] == 'FilterAnnotations']
        assert len(steps) == 1
        # after every geometric transform, just before packing
        assert split.pipeline[-2] == steps[0]
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            step = TRANSFORMS.build(steps[0])
        rotated = 'rbox' in str(split.pipeline)
        boxes = [[10, 10, 0, 5, 0.3], [20, 20, 6, 4, 0.1]] if rotated \
            else [[5, 5, 5, 30], [10, 10, 16, 14]]
        if rotated:
            from mmrotate.structures.bbox import RotatedBoxes as box_type
        else:
            box_type = HorizontalBoxes
        out = step(dict(gt_bboxes=box_type(np.array(boxes, np.float32)),
                        gt_bboxes_labels=np.array([0, 1]),
                        gt_ignore_flags=np.array([False, False])))
        assert out['gt_bboxes_labels'].tolist() == [1]  # zero-size dropped


# a config's dataset, from its file name (dior-r tried before dior)
DATASET = re.compile(r'_(dior-r|dior|dota)\.py$')


@pytest.mark.parametrize('path', TOP_LEVEL,
                         ids=[osp.relpath(p, REPO) for p in TOP_LEVEL])
def test_top_level_config_is_a_declarative_diff_of_its_own_dataset(path):
    """A top-level config states values: no `del`, no loop statement, no
    assignment into a dict or attribute, no `.update(...)`; and every config
    it reads (`_base_`, Config.fromfile) is one of its own dataset (a DOTA
    config does not read a DIOR config)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Delete, ast.For, ast.While)), \
            f'line {node.lineno}: {type(node).__name__}'
        assigns_into = isinstance(node, (ast.AugAssign, ast.AnnAssign)) or (
            isinstance(node, ast.Assign)
            and not all(isinstance(t, ast.Name) for t in node.targets))
        assert not assigns_into, f'line {node.lineno}: assigns into a value'
        if isinstance(node, ast.Call) and isinstance(node.func,
                                                     ast.Attribute):
            assert node.func.attr != 'update', f'line {node.lineno}'
    dataset = DATASET.search(osp.basename(path)).group(1)
    read = [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.endswith('.py')]
    assert read  # at least its base
    for name in read:
        other = DATASET.search(name)
        assert other is None or other.group(1) == dataset, (name, dataset)
