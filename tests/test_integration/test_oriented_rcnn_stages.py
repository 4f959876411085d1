"""DS2D2 with a two-stage oriented detector (MMRotate's Oriented R-CNN, le90)
end to end through MMEngine's Runner, on the tiny generated DOTA split
patches and DIOR-R data of test_rotated_stages: teacher -> high-frequency
amplifier -> distilled student, handing checkpoints from stage to stage."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import get_box_tensor
from mmengine.hooks import Hook
from mmengine.runner import Runner

from synthetic.tiny import tiny_config

from ..conftest import requires_mmrotate
from .test_rotated_stages import (NUM_CLASSES, SIZE, TERMS, RecordBatches,
                                  converts_to_a_plain_rotated_detector,
                                  keep_empty_images, make_data,
                                  without_evaluation)
from .test_three_stages import (WatchFrozen,
                                keeps_teacher_and_amplifier_as_loaded,
                                state_dict)

pytestmark = requires_mmrotate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
# MMRotate's DOTAMetric spawns a pool of 4 processes (about 15 s on 2 busy
# cores): the DOTA teacher shows that the evaluation runs; DIOR-R's,
# the same metric config, is evaluated in test_rotated_stages
EVALUATED = 'dota'


def configs(dataset):
    """The teacher, amplifier, DS2D2 and plain student configs."""
    names = (f'oriented-rcnn-le90_r101_fpn_2x_{dataset}.py',
             f'ds2d2_amplifier_oriented-rcnn-le90_r101_fpn_2x_{dataset}.py',
             f'ds2d2_oriented-rcnn-le90_r18_r101_{dataset}.py',
             f'oriented-rcnn-le90_r18_fpn_2x_{dataset}.py')
    return [osp.join(CONFIGS, name) for name in names]


class RecordRoIs(Hook):
    """Records, after every training iteration, the RoIs the student's RoI
    head sampled, as the distiller's recorder handed them to the RoI
    amplifier losses: their box type and number of columns."""

    def __init__(self):
        self.box_types, self.columns = set(), set()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        recorder = runner.model.distiller.student_recorders.get_recorder(
            'rois')
        for result in recorder.get_record_data(record_idx=0, data_idx=1):
            self.box_types.add(type(result.priors).__name__)
            self.columns.add(get_box_tensor(result.priors).shape[-1])


@pytest.fixture(scope='module', params=sorted(NUM_CLASSES))
def stages(request, tmp_path_factory):
    """Run the three stages once per dataset; return runners and files."""
    dataset = request.param
    teacher, amplifier, student, plain = configs(dataset)
    root = tmp_path_factory.mktemp(f'oriented-rcnn-{dataset}')
    data = make_data(dataset, root)
    out = dict(dataset=dataset, root=root, data=data, plain=plain)

    cfg = keep_empty_images(
        tiny_config(teacher, data, root / 'teacher', image_size=SIZE))
    if dataset != EVALUATED:
        cfg = without_evaluation(cfg)
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
    out['rois'] = RecordRoIs()
    out['student'] = Runner.from_cfg(cfg)
    for hook in (out['watch'], out['batches'], out['rois']):
        out['student'].register_hook(hook)
    out['student'].train()
    return out


def test_teacher_trains_and_is_evaluated_with_the_dota_metric(stages):
    runner = stages['teacher']
    assert osp.isfile(stages['teacher_ckpt'])
    model = runner.model
    head = model.roi_head.bbox_head
    assert (type(model.rpn_head).__name__,
            type(model.roi_head.bbox_roi_extractor).__name__,
            type(head.bbox_coder).__name__, head.bbox_coder.angle_version,
            head.num_classes) == ('OrientedRPNHead',
                                  'RotatedSingleRoIExtractor',
                                  'DeltaXYWHTRBBoxCoder', 'le90',
                                  NUM_CLASSES[stages['dataset']])
    scalars = runner.message_hub.log_scalars
    assert np.isfinite(scalars['train/loss'].current())
    if stages['dataset'] == EVALUATED:
        # MMRotate's DOTA metric ran on the evaluation images
        assert 0 <= scalars['val/dota/mAP'].current() <= 1


def test_amplifier_starts_from_the_teacher_and_trains_only_its_heads(stages):
    teacher = state_dict(stages['teacher_ckpt'])
    amplifier = state_dict(stages['amplifier_ckpt'])
    assert set(amplifier) == set(teacher)
    frozen = [k for k in teacher if k.startswith(('backbone.', 'neck.'))]
    assert frozen
    for key in frozen:  # BN statistics included: eval mode throughout
        assert torch.equal(amplifier[key], teacher[key]), key
    # both heads retrained on HF(F): the RPN and the RoI head
    for prefix in ('rpn_head.', 'roi_head.'):
        head = [k for k in teacher
                if k.startswith(prefix) and k.endswith('weight')]
        assert head and any(not torch.equal(amplifier[k], teacher[k])
                            for k in head), prefix
    assert type(stages['amplifier'].model).__name__ == \
        'HighFrequencyFasterRCNN'


def test_student_keeps_teacher_and_amplifier_frozen(stages):
    keeps_teacher_and_amplifier_as_loaded(stages)


def test_student_logs_each_term_with_rotated_boxes_and_rois(stages):
    batches = stages['batches']
    # 5 images, batch 2: 3 iterations; the image without objects was in
    # one of them; DISW and the heads got rotated boxes
    assert len(batches.boxes) == 3
    counts = sum(batches.boxes, [])
    assert len(counts) == 5 and 0 in counts
    assert batches.box_types == {'RotatedBoxes'}
    # the RoI amplifiers got the student's rotated RoIs (cx, cy, w, h, a)
    assert stages['rois'].box_types == {'RotatedBoxes'}
    assert stages['rois'].columns == {5}
    scalars = stages['student'].message_hub.log_scalars
    for term in TERMS:
        values = scalars[f'train/distill.{term}'].data[0]
        assert len(values) == 3
        assert all(np.isfinite(v) and v > 0 for v in values), (term, values)
    for task in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'):
        assert np.isfinite(scalars[f'train/student.{task}'].current())


def test_student_checkpoint_converts_to_a_plain_oriented_rcnn(stages):
    converts_to_a_plain_rotated_detector(stages)
