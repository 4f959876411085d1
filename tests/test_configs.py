"""The configs parse, state the paper's recipe, and fail early and clearly
when a stage's checkpoint is missing."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import ds2d2_mmrazor  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True))
DS2D2 = osp.join(REPO, 'configs', 'ds2d2_retina_r18_r101_dior.py')
AMPLIFIER = osp.join(REPO, 'configs',
                     'ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py')


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_parses_and_round_trips(path, tmp_path):
    cfg = Config.fromfile(path)
    cfg.dump(str(tmp_path / 'dumped.py'))
    again = Config.fromfile(str(tmp_path / 'dumped.py'))
    assert again.to_dict() == cfg.to_dict()
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
                       r'train the teacher first \(stage 1'):
        _build(cfg)


def test_missing_amplifier_checkpoint_names_stage_2(tmp_path):
    (tmp_path / 'teacher.pth').write_bytes(b'')
    cfg = Config.fromfile(DS2D2)
    cfg.model.teacher_ckpt = str(tmp_path / 'teacher.pth')
    cfg.model.amplifier_ckpt = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError,
                       match=r'amplifier_ckpt .* train the high-frequency '
                       r'amplifier first \(stage 2'):
        _build(cfg)


def test_amplifier_config_without_teacher_checkpoint_names_stage_1():
    from mmdet.registry import MODELS
    cfg = Config.fromfile(AMPLIFIER)
    assert cfg.model.teacher_ckpt.startswith('work_dirs/')
    cfg.model.teacher_ckpt = '/nonexistent/teacher.pth'
    with pytest.raises(FileNotFoundError, match='stage 1'):
        MODELS.build(cfg.model)


PEERS = sorted(glob.glob(osp.join(REPO, 'configs', 'peers', '*.py')))


@pytest.mark.parametrize('path', PEERS, ids=[osp.basename(p) for p in PEERS])
def test_peer_baseline_builds_and_distils_every_fpn_level(path, tmp_path):
    import torch
    from mmdet.testing import demo_mm_inputs
    from mmrazor.registry import MODELS

    from ds2d2_mmrazor.tiny import tiny_dior_config
    cfg = tiny_dior_config(path, str(tmp_path), str(tmp_path), classes=(
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
        assert loss.type == 'RoIAmplifierLoss' and loss.temperature == 3.0
        assert (loss.cls_weight, loss.reg_weight) == (0.5 * rois, 1.0)
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
