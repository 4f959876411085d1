"""The DS2D2 recipe end to end through MMEngine's Runner, on tiny generated
DIOR-format data with tiny models: teacher -> high-frequency amplifier ->
distilled student, handing checkpoints from stage to stage."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ..conftest import make_dior, tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')
# detector family -> teacher, amplifier and DS2D2 configs, the amplifier's
# class, and the prefixes of the heads the amplifier retrains
FAMILIES = {
    'retinanet': ('retinanet_r101_fpn_2x_dior.py',
                  'ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py',
                  'ds2d2_retina_r18_r101_dior.py', 'HighFrequencyRetinaNet',
                  ('bbox_head.', )),
    'faster-rcnn': ('faster-rcnn_r101_fpn_2x_dior.py',
                    'ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py',
                    'ds2d2_faster-rcnn_r18_r101_dior.py',
                    'HighFrequencyFasterRCNN', ('rpn_head.', 'roi_head.')),
}


def state_dict(path):
    return torch.load(path, map_location='cpu')['state_dict']


class WatchFrozen(Hook):
    """Records, at every training iteration, whether teacher and amplifier
    are entirely in eval mode."""

    def __init__(self):
        self.eval_at_iter = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        self.eval_at_iter.append(all(
            not m.training for part in (model.teacher, model.amplifier)
            for m in part.modules()))


@pytest.fixture(scope='module', params=sorted(FAMILIES))
def stages(request, tmp_path_factory):
    """Run the three stages once per detector family; return their runners
    and work dirs."""
    teacher, amplifier, student, hf_class, heads = FAMILIES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    data = make_dior(str(root / 'DIOR')) + '/'
    out = dict(hf_class=hf_class, heads=heads)

    cfg = tiny_config(
        osp.join(CONFIGS, teacher), data, root / 'teacher')
    out['teacher'] = Runner.from_cfg(cfg)
    out['teacher'].train()
    teacher_ckpt = str(root / 'teacher' / 'epoch_1.pth')

    cfg = tiny_config(
        osp.join(CONFIGS, amplifier), data, root / 'amplifier')
    cfg.model.teacher_ckpt = teacher_ckpt
    out['amplifier'] = Runner.from_cfg(cfg)
    out['amplifier'].train()
    amplifier_ckpt = str(root / 'amplifier' / 'epoch_1.pth')

    cfg = tiny_config(
        osp.join(CONFIGS, student), data, root / 'student')
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.amplifier_ckpt = amplifier_ckpt
    watch = WatchFrozen()
    out['student'] = Runner.from_cfg(cfg)
    out['student'].register_hook(watch)
    out['student'].train()
    out.update(root=root, data=data, teacher_ckpt=teacher_ckpt,
               amplifier_ckpt=amplifier_ckpt, watch=watch,
               student_cfg=cfg)
    return out


def test_teacher_stage_trains_and_evaluates(stages):
    runner = stages['teacher']
    assert osp.isfile(stages['teacher_ckpt'])
    scalars = runner.message_hub.log_scalars
    assert torch.isfinite(torch.tensor(
        scalars['train/loss'].current())).item()
    # COCO-style evaluation on the DIOR test split ran: AP50 and mAP
    for metric in ('val/coco/bbox_mAP_50', 'val/coco/bbox_mAP'):
        assert 0 <= scalars[metric].current() <= 1


def test_amplifier_starts_from_the_teacher_and_trains_only_its_head(stages):
    teacher = state_dict(stages['teacher_ckpt'])
    amplifier = state_dict(stages['amplifier_ckpt'])
    assert set(amplifier) == set(teacher)
    frozen = [k for k in teacher if k.startswith(('backbone.', 'neck.'))]
    head = [k for k in teacher if k.startswith(stages['heads'])
            and k.endswith('weight')]
    assert frozen and head
    for key in frozen:  # BN statistics included: eval mode throughout
        assert torch.equal(amplifier[key], teacher[key]), key
    assert any(not torch.equal(amplifier[k], teacher[k]) for k in head)
    model = stages['amplifier'].model
    assert type(model).__name__ == stages['hf_class']


def test_student_stage_loads_both_checkpoints_and_keeps_them_frozen(stages):
    keeps_teacher_and_amplifier_as_loaded(stages)


def keeps_teacher_and_amplifier_as_loaded(stages):
    """Stage 3's teacher and amplifier hold their checkpoints' weights (the
    amplifier only the head its losses run), in eval mode throughout."""
    model = stages['student'].model
    for part, ckpt in (('teacher', 'teacher_ckpt'),
                       ('amplifier', 'amplifier_ckpt')):
        saved = state_dict(stages[ckpt])
        now = getattr(model, part).state_dict()
        if part == 'amplifier':
            # stage 3 keeps only the head the amplifier losses run (not
            # the backbone, neck or, for Faster R-CNN, the RPN head)
            kept = 'roi_head.' if hasattr(model.student, 'roi_head') else \
                'bbox_head.'
            assert {k.split('.')[0] for k in now} == {kept[:-1]}
            saved = {k: v for k, v in saved.items() if k.startswith(kept)}
        assert now and set(now) == set(saved)
        for key, value in saved.items():
            assert torch.equal(now[key], value), f'{part}.{key} changed'
    # eval mode at every iteration, although the Runner called train()
    watch = stages['watch']
    assert watch.eval_at_iter and all(watch.eval_at_iter)


def test_student_stage_logs_each_term_separately(stages):
    scalars = stages['student'].message_hub.log_scalars
    for term in TERMS:
        values = scalars[f'train/distill.{term}'].data[0]
        assert len(values) == 2  # one per iteration (4 images, batch 2)
        assert all(torch.isfinite(torch.tensor(v)) and v > 0
                   for v in values), (term, values)
    for task in ('loss_cls', 'loss_bbox'):
        assert f'train/student.{task}' in scalars
    # the checkpoint's student part loads into a plain student detector
    ckpt = state_dict(osp.join(stages['root'], 'student', 'epoch_1.pth'))
    student_keys = {k[len('architecture.'):] for k in ckpt
                    if k.startswith('architecture.')}
    assert student_keys == set(stages['student'].model.student.state_dict())


def _launch(stages, tmp_path, command):
    """Run a training command on the tiny stage-3 config; return the
    distillation terms it logged."""
    import json
    import subprocess

    cfg = stages['student_cfg'].copy()
    cfg.work_dir = str(tmp_path / 'run')
    path = str(tmp_path / 'ds2d2_tiny.py')
    cfg.dump(path)
    result = subprocess.run(
        command + [path, '--work-dir', cfg.work_dir], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    logs = list((tmp_path / 'run').glob('*/vis_data/scalars.json'))
    assert len(logs) == 1
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if 'distill.loss_low' in
                   line]
    assert records
    return records


def test_tools_train_single_process(stages, tmp_path):
    import sys
    records = _launch(stages, tmp_path,
                      [sys.executable, osp.join(REPO, 'tools', 'train.py')])
    assert len(records) == 2
    assert all(r[f'distill.{t}'] > 0 for r in records for t in TERMS)


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_tools_train_under_torchrun_with_two_processes(stages, tmp_path):
    import sys
    records = _launch(stages, tmp_path, [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_addr=127.0.0.1', f'--master_port={_free_port()}',
        osp.join(REPO, 'tools', 'train.py'),
        '--launcher', 'pytorch'
    ])
    # 4 images over 2 processes x batch 2: one iteration
    assert len(records) == 1
    assert all(records[0][f'distill.{t}'] > 0 for t in TERMS)


def test_mim_train_mmrazor(stages, tmp_path):
    import shutil
    import sys
    mim = shutil.which('mim', path=osp.dirname(sys.executable))
    assert mim, 'openmim is installed by make install'
    records = _launch(stages, tmp_path, [mim, 'train', 'mmrazor'])
    assert len(records) == 2
