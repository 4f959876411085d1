"""DS2D2 with oriented boxes (MMRotate, rotated RetinaNet le90) end to end
through MMEngine's Runner, on tiny generated DOTA split patches and DIOR-R
data: teacher -> high-frequency amplifier -> distilled student, handing
checkpoints from stage to stage."""
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from ds2d2_mmrazor.datasets import OBB_ANN_SUBDIR
from synthetic.data import make_synthetic_dior
from synthetic.tiny import tiny_config

from ..conftest import make_dota_split, requires_mmrotate
from .test_three_stages import (WatchFrozen,
                                keeps_teacher_and_amplifier_as_loaded,
                                state_dict)

pytestmark = requires_mmrotate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')
SIZE = 64  # image side, also the tiny configs' image size
NUM_CLASSES = {'dota': 15, 'dior-r': 20}


def configs(dataset):
    """The teacher, amplifier, DS2D2 and plain student configs."""
    names = (f'rotated-retinanet-le90_r101_fpn_2x_{dataset}.py',
             f'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_{dataset}'
             '.py', f'ds2d2_rotated-retina-le90_r18_r101_{dataset}.py',
             f'rotated-retinanet-le90_r18_fpn_2x_{dataset}.py')
    return [osp.join(CONFIGS, name) for name in names]


def rotated_patches(rng, count, empty=0):
    """DOTA annotation lines of ``count`` patches with 1-3 rotated
    rectangles each (the first ``empty`` patches have none)."""
    import cv2
    classes = ('plane', 'ship', 'small-vehicle')
    patches = {}
    for i in range(count):
        lines = []
        for _ in range(0 if i < empty else rng.integers(1, 4)):
            centre = rng.uniform(14, SIZE - 14, 2)
            size = rng.uniform(8, 24, 2)
            corners = cv2.boxPoints(
                (tuple(centre), tuple(size), rng.uniform(0, 180)))
            lines.append(' '.join(f'{v:.1f}' for v in corners.ravel())
                         + f' {classes[rng.integers(3)]} 0')
        patches[f'P{i:04d}__{SIZE}__0___0'] = lines
    return patches


def make_data(dataset, root):
    """5 training images (at least one without objects) and 2 evaluation
    images."""
    if dataset == 'dota':
        data = str(root / 'split_ss_dota')
        rng = np.random.default_rng(0)
        make_dota_split(data, rotated_patches(rng, 5, empty=1), 'train',
                        SIZE)
        make_dota_split(data, rotated_patches(rng, 2), 'val', SIZE)
        return data + '/'
    data = make_synthetic_dior(str(root / 'DIOR'), num_trainval=5,
                               num_test=2, image_size=SIZE,
                               max_objects=6)['out_dir']
    # empty the first trainval image: no objects drawn, none annotated
    import mmcv
    mmcv.imwrite(np.full((SIZE, SIZE, 3), 100, np.uint8),
                 osp.join(data, 'JPEGImages-trainval', '00001.jpg'))
    xml = osp.join(data, OBB_ANN_SUBDIR, '00001.xml')
    tree = ET.parse(xml)
    for obj in tree.getroot().findall('object'):
        tree.getroot().remove(obj)
    tree.write(xml)
    return data + '/'


def keep_empty_images(cfg):
    """Train on images without objects too (the recipe filters them out)."""
    dataset = cfg.train_dataloader.dataset
    for split in dataset.get('datasets', [dataset]):
        split.filter_cfg = None
    return cfg


def without_evaluation(cfg):
    """Train only: MMRotate's DOTAMetric computes AP in a pool of spawned
    processes (seconds on a small CPU); the teacher stage shows that the
    evaluation runs."""
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


class RecordBatches(Hook):
    """Records the ground truth of every training batch: boxes per image
    and their type."""

    def __init__(self):
        self.boxes = []
        self.box_types = set()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        gts = [s.gt_instances.bboxes for s in data_batch['data_samples']]
        self.boxes.append([len(b) for b in gts])
        self.box_types.update(type(b).__name__ for b in gts)


@pytest.fixture(scope='module', params=sorted(NUM_CLASSES))
def stages(request, tmp_path_factory):
    """Run the three stages once per dataset; return runners and files."""
    dataset = request.param
    teacher, amplifier, student, plain = configs(dataset)
    root = tmp_path_factory.mktemp(dataset)
    data = make_data(dataset, root)
    out = dict(dataset=dataset, root=root, data=data, plain=plain)

    cfg = keep_empty_images(
        tiny_config(teacher, data, root / 'teacher', image_size=SIZE))
    out['teacher'] = Runner.from_cfg(cfg)
    out['teacher'].train()
    out['teacher_ckpt'] = str(root / 'teacher' / 'epoch_1.pth')

    cfg = without_evaluation(keep_empty_images(
        tiny_config(amplifier, data, root / 'amplifier', image_size=SIZE)))
    cfg.model.teacher_ckpt = out['teacher_ckpt']
    out['amplifier'] = Runner.from_cfg(cfg)
    out['amplifier'].train()
    out['amplifier_ckpt'] = str(root / 'amplifier' / 'epoch_1.pth')

    cfg = without_evaluation(keep_empty_images(
        tiny_config(student, data, root / 'student', image_size=SIZE)))
    cfg.model.teacher_ckpt = out['teacher_ckpt']
    cfg.model.amplifier_ckpt = out['amplifier_ckpt']
    out['watch'], out['batches'] = WatchFrozen(), RecordBatches()
    out['student'] = Runner.from_cfg(cfg)
    out['student'].register_hook(out['watch'])
    out['student'].register_hook(out['batches'])
    out['student'].train()
    return out


def test_teacher_trains_and_is_evaluated_with_the_dota_metric(stages):
    runner = stages['teacher']
    assert osp.isfile(stages['teacher_ckpt'])
    head = runner.model.bbox_head
    assert (type(head.prior_generator).__name__,
            type(head.bbox_coder).__name__, head.bbox_coder.angle_version,
            head.num_classes) == ('FakeRotatedAnchorGenerator',
                                  'DeltaXYWHTRBBoxCoder', 'le90',
                                  NUM_CLASSES[stages['dataset']])
    scalars = runner.message_hub.log_scalars
    assert np.isfinite(scalars['train/loss'].current())
    # MMRotate's DOTA metric ran on the evaluation images
    assert 0 <= scalars['val/dota/mAP'].current() <= 1


def test_amplifier_starts_from_the_teacher_and_trains_only_its_head(stages):
    teacher = state_dict(stages['teacher_ckpt'])
    amplifier = state_dict(stages['amplifier_ckpt'])
    assert set(amplifier) == set(teacher)
    frozen = [k for k in teacher if k.startswith(('backbone.', 'neck.'))]
    head = [k for k in teacher
            if k.startswith('bbox_head.') and k.endswith('weight')]
    assert frozen and head
    for key in frozen:  # BN statistics included: eval mode throughout
        assert torch.equal(amplifier[key], teacher[key]), key
    assert any(not torch.equal(amplifier[k], teacher[k]) for k in head)
    assert type(stages['amplifier'].model).__name__ == \
        'HighFrequencyRetinaNet'


def test_student_keeps_teacher_and_amplifier_frozen(stages):
    keeps_teacher_and_amplifier_as_loaded(stages)


def test_student_logs_each_term_every_iteration_with_an_empty_image(stages):
    batches = stages['batches']
    # 5 images, batch 2: 3 iterations; the image without objects was in
    # one of them; DISW and the heads got rotated boxes
    assert len(batches.boxes) == 3
    counts = sum(batches.boxes, [])
    assert len(counts) == 5 and 0 in counts
    assert batches.box_types == {'RotatedBoxes'}
    scalars = stages['student'].message_hub.log_scalars
    for term in TERMS:
        values = scalars[f'train/distill.{term}'].data[0]
        assert len(values) == 3
        assert all(np.isfinite(v) and v > 0 for v in values), (term, values)
    for task in ('loss_cls', 'loss_bbox'):
        assert np.isfinite(scalars[f'train/student.{task}'].current())


def test_student_checkpoint_converts_to_a_plain_rotated_detector(stages):
    converts_to_a_plain_rotated_detector(stages)


def converts_to_a_plain_rotated_detector(stages):
    """The stage-3 checkpoint, converted by tools/convert_to_student.py,
    loads strictly into the plain student, with the student's weights, and
    predicts rotated boxes."""
    import convert_to_student  # tools/, on the path (conftest)
    from mmengine.runner import load_checkpoint
    from mmrotate.registry import MODELS
    from mmrotate.testing import demo_mm_inputs
    root = stages['root']
    ckpt = str(root / 'student' / 'epoch_1.pth')
    plain = str(root / 'student_plain.pth')
    convert_to_student.main([ckpt, '--out', plain])
    cfg = tiny_config(stages['plain'], stages['data'], root / 'plain',
                      image_size=SIZE)
    with DefaultScope.overwrite_default_scope('mmrotate'):
        detector = MODELS.build(cfg.model)
    load_checkpoint(detector, plain, map_location='cpu', strict=True)
    saved = state_dict(ckpt)
    for key, value in detector.state_dict().items():
        assert torch.equal(value, saved[f'architecture.{key}']), key
    detector.eval()
    data = detector.data_preprocessor(demo_mm_inputs(
        batch_size=1, image_shapes=(3, SIZE, SIZE), use_box_type=True))
    with torch.no_grad():
        result = detector(**data, mode='predict')[0]
    assert result.pred_instances.bboxes.shape[-1] == 5  # cx cy w h angle
