"""The configs of the release's inventory beyond R-18 from R-101: ResNet-34
and -50 students (RetinaNet on DOTA, Faster R-CNN on DIOR) and the
ResNeXt-101 64x4d teachers. Each states the backbone it names, reads the
configs of the stages before it, and, made tiny, trains an iteration
through MMEngine's Runner. MMDetection only: no MMRotate."""
import functools
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from .conftest import make_dior, make_dota_split

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')

# backbone type, depth, groups, base width, ImageNet checkpoint; FPN inputs
R18 = ('ResNet', 18, None, None, 'torchvision://resnet18',
       [64, 128, 256, 512])
R34 = ('ResNet', 34, None, None, 'torchvision://resnet34',
       [64, 128, 256, 512])
R50 = ('ResNet', 50, None, None, 'torchvision://resnet50',
       [256, 512, 1024, 2048])
R101 = ('ResNet', 101, None, None, 'torchvision://resnet101',
        [256, 512, 1024, 2048])
X101 = ('ResNeXt', 101, 64, 4, 'open-mmlab://resnext101_64x4d',
        [256, 512, 1024, 2048])

# a detector trained alone (baseline student or stage-1 teacher) -> backbone
DETECTORS = {
    'retinanet_r34_fpn_2x_dota': R34,
    'retinanet_r50_fpn_2x_dota': R50,
    'faster-rcnn_r34_fpn_2x_dior': R34,
    'faster-rcnn_r50_fpn_2x_dior': R50,
    'retinanet_x101-64x4d_fpn_2x_dior': X101,
    'retinanet_x101-64x4d_fpn_2x_dota': X101,
    'faster-rcnn_x101-64x4d_fpn_2x_dior': X101,
}
# stage 2: ds2d2_amplifier_<its teacher's config>
AMPLIFIERS = [
    'ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dior',
    'ds2d2_amplifier_retinanet_x101-64x4d_fpn_2x_dota',
    'ds2d2_amplifier_faster-rcnn_x101-64x4d_fpn_2x_dior',
]
# stage 3 -> the R-18 from R-101 config it varies, its student's config and
# its teacher's (the amplifier's is ds2d2_amplifier_<teacher>)
STAGE_3 = {
    'ds2d2_retina_r34_r101_dota': (
        'ds2d2_retina_r18_r101_dota', 'retinanet_r34_fpn_2x_dota',
        'retinanet_r101_fpn_2x_dota'),
    'ds2d2_retina_r50_r101_dota': (
        'ds2d2_retina_r18_r101_dota', 'retinanet_r50_fpn_2x_dota',
        'retinanet_r101_fpn_2x_dota'),
    'ds2d2_faster-rcnn_r34_r101_dior': (
        'ds2d2_faster-rcnn_r18_r101_dior', 'faster-rcnn_r34_fpn_2x_dior',
        'faster-rcnn_r101_fpn_2x_dior'),
    'ds2d2_faster-rcnn_r50_r101_dior': (
        'ds2d2_faster-rcnn_r18_r101_dior', 'faster-rcnn_r50_fpn_2x_dior',
        'faster-rcnn_r101_fpn_2x_dior'),
    'ds2d2_retina_r18_x101-64x4d_dior': (
        'ds2d2_retina_r18_r101_dior', 'retinanet_r18_fpn_2x_dior',
        'retinanet_x101-64x4d_fpn_2x_dior'),
    'ds2d2_retina_r18_x101-64x4d_dota': (
        'ds2d2_retina_r18_r101_dota', 'retinanet_r18_fpn_2x_dota',
        'retinanet_x101-64x4d_fpn_2x_dota'),
    'ds2d2_faster-rcnn_r18_x101-64x4d_dior': (
        'ds2d2_faster-rcnn_r18_r101_dior', 'faster-rcnn_r18_fpn_2x_dior',
        'faster-rcnn_x101-64x4d_fpn_2x_dior'),
}
NEW = sorted([*DETECTORS, *AMPLIFIERS, *STAGE_3])
TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')


@functools.lru_cache(maxsize=None)
def load(name: str) -> Config:
    """The config ``name`` of configs/, parsed once (the tests only read
    it); written out without yapf's formatting, which costs seconds."""
    return Config.fromfile(osp.join(CONFIGS, f'{name}.py'),
                           format_python_code=False)


def backbone_of(detector) -> tuple:
    backbone = detector.backbone
    return (backbone.type, backbone.depth, backbone.get('groups'),
            backbone.get('base_width'), backbone.init_cfg.checkpoint,
            detector.neck.in_channels)


def checkpoint_of(name: str) -> str:
    """Where the config ``name`` writes its last checkpoint."""
    return f'work_dirs/{name}/epoch_24.pth'


@pytest.mark.parametrize('name', sorted(DETECTORS))
def test_detector_states_its_backbone(name):
    cfg = load(name)
    assert backbone_of(cfg.model) == DETECTORS[name]
    # the recipe of the R-18 config of its detector and dataset
    sibling = load(name.replace(name.split('_')[1], 'r18'))
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'val_evaluator', 'custom_hooks'):
        assert cfg[key] == sibling[key], key
    assert cfg.model.type == sibling.model.type
    head = 'bbox_head' if 'bbox_head' in cfg.model else 'roi_head'
    assert cfg.model[head] == sibling.model[head]


@pytest.mark.parametrize('name', AMPLIFIERS)
def test_amplifier_is_its_teachers_detector(name):
    teacher = name[len('ds2d2_amplifier_'):]
    model = load(name).model
    assert model.type == 'HighFrequencyAmplifier'
    assert model.detector == load(teacher).model
    assert backbone_of(model.detector) == X101
    assert model.teacher_ckpt == checkpoint_of(teacher)


@pytest.mark.parametrize('name', sorted(STAGE_3))
def test_stage_3_reads_the_configs_of_its_stages(name):
    """The student, teacher and amplifier of their own configs, the
    checkpoints those write, and everything else (distiller, DS2D2
    weights, data, schedule) of the R-18 from R-101 config."""
    variant_of, student, teacher = STAGE_3[name]
    amplifier = f'ds2d2_amplifier_{teacher}'
    cfg, base = load(name), load(variant_of)
    model = cfg.model
    assert model.architecture == load(student).model
    assert model.teacher == load(teacher).model
    assert model.amplifier == dict(load(amplifier).model,
                                   type='mmdet.HighFrequencyAmplifier',
                                   teacher_ckpt=None)
    assert (model.teacher_ckpt, model.amplifier_ckpt) == \
        (checkpoint_of(teacher), checkpoint_of(amplifier))
    assert model.distiller == base.model.distiller
    assert (model.type, model._scope_) == ('DS2D2Distill', 'mmrazor')
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'val_evaluator', 'custom_hooks'):
        assert cfg[key] == base[key], key
    expected = (DETECTORS.get(student, R18),
                X101 if 'x101' in teacher else R101)
    assert (backbone_of(model.architecture),
            backbone_of(model.teacher)) == expected


@pytest.mark.parametrize('name,block,counts,width,groups', [
    ('retinanet_r34_fpn_2x_dota', 'BasicBlock', [3, 4, 6, 3], 64, 1),
    ('faster-rcnn_r50_fpn_2x_dior', 'Bottleneck', [3, 4, 6, 3], 64, 1),
    ('retinanet_x101-64x4d_fpn_2x_dior', 'Bottleneck', [3, 4, 23, 3], 256,
     64),
], ids=['r34', 'r50', 'x101-64x4d'])
def test_backbone_builds_and_feeds_its_fpn(name, block, counts, width,
                                           groups):
    """The real backbone (random weights, nothing downloaded) and its FPN:
    block type and counts, the first 3x3 convolution's width and groups
    (64x4d: 64 groups of 4 channels), five 256-channel levels."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    model = load(name).model
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(dict(model.backbone, init_cfg=None))
        neck = MODELS.build(model.neck)
    backbone.eval()
    neck.eval()
    layers = [getattr(backbone, f'layer{i}') for i in range(1, 5)]
    assert [len(layer) for layer in layers] == counts
    first = layers[0][0]
    assert type(first).__name__ == block
    conv = first.conv1 if block == 'BasicBlock' else first.conv2
    assert (conv.out_channels, conv.groups) == (width, groups)
    with torch.no_grad():
        levels = neck(backbone(torch.zeros(1, 3, 64, 64)))
    assert [tuple(x.shape[:2]) for x in levels] == [(1, 256)] * 5


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Two training images of each dataset (one iteration of batch 2):
    DIOR as released, DOTA split patches with their COCO json."""
    from mmengine.fileio import dump

    from ds2d2_mmrazor.datasets import dota_to_coco
    root = tmp_path_factory.mktemp('inventory')
    dior = make_dior(str(root / 'DIOR'), num_trainval=2, num_test=0)
    dota = make_dota_split(str(root / 'split_ss_dota'), {
        'P0000__1024__0___0': ['8 8 40 8 40 30 8 30 plane 0',
                               '44 40 60 40 60 60 44 60 ship 0'],
        'P0001__1024__0___0': ['10 20 50 20 50 44 10 44 harbor 1'],
    })
    dump(dota_to_coco(osp.join(dota, 'train'), (64, 64)),
         osp.join(dota, 'train', 'train.json'))
    return dict(dior=dior + '/', dota=dota + '/')


@pytest.mark.parametrize('name', NEW)
def test_tiny_config_trains_an_iteration(name, data, tmp_path):
    """One iteration of the config made tiny (tools/synthetic/tiny.py),
    through the Runner, without evaluation: finite losses; at stage 3 the
    four DS2D2 terms, logged one by one."""
    from mmengine.runner import Runner

    from synthetic.tiny import tiny_config
    dataset = 'dota' if name.endswith('_dota') else 'dior'
    # the config as parsed above, dumped: parsing its mmdet:: bases again
    # would cost seconds, as would yapf formatting it for the Runner's log
    path = str(tmp_path / f'{name}.py')
    load(name).dump(path)
    cfg = tiny_config(path, data[dataset], str(tmp_path))
    cfg = Config(cfg.to_dict(), filename=path, format_python_code=False)
    for field in ('teacher_ckpt', 'amplifier_ckpt'):  # random stages 1, 2
        if field in cfg.model:
            cfg.model[field] = None
    for stage in ('val', 'test'):
        for key in ('cfg', 'dataloader', 'evaluator'):
            cfg[f'{stage}_{key}'] = None
    cfg.default_hooks.checkpoint = None
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    losses = {k[len('train/'):]: v.current() for k, v in
              runner.message_hub.log_scalars.items()
              if k.startswith('train/') and 'loss' in k}
    assert 'loss' in losses
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), \
        losses
    if name in STAGE_3:
        assert {f'distill.{t}' for t in TERMS} <= set(losses), losses
        assert all(losses[f'distill.{t}'] > 0 for t in TERMS), losses
