"""MMEngine's DDP path: ``torchrun --nproc_per_node=2`` (gloo, CPU), one
image per process, logs the same per-iteration DS2D2 losses, averaged over
the ranks, as one process with both images in its batch.

For the comparison to be exact up to rounding, the images share one box
layout (so every image has the same number of positive anchors: the
amplifier and RetinaNet losses divide by the batch's count, which differs
between a rank's half batch and the whole one otherwise), the student's
BatchNorm uses running statistics (norm_eval; per-process batch statistics
differ by construction) and random flips are off. DDP averages the
gradients, so the second iteration matches as well."""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from synthetic import tiny
from mmrazor.registry import MODELS

from ..conftest import make_dior

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
CONFIG = osp.join(REPO, 'configs', 'ds2d2_retina_r18_r101_dior.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def one_layout(root):
    """Every image gets the first image's objects (pixels stay random)."""
    ann_dir = osp.join(root, 'Annotations', 'Horizontal Bounding Boxes')
    names = sorted(os.listdir(ann_dir))
    first = open(osp.join(ann_dir, names[0])).read()
    for name in names[1:]:
        stem = osp.splitext(name)[0]
        with open(osp.join(ann_dir, name), 'w') as f:
            f.write(first.replace(osp.splitext(names[0])[0], stem))


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp('ddp')
    data = make_dior(str(root / 'DIOR')) + '/'
    one_layout(data)
    cfg = tiny.tiny_config(CONFIG, data, str(root / 'unused'),
                                batch_size=2)
    cfg.model.update(teacher_ckpt=None, amplifier_ckpt=None)
    torch.manual_seed(0)
    algo = MODELS.build(cfg.model)
    algo.init_weights()
    for part in ('teacher', 'amplifier'):
        path = str(root / f'{part}.pth')
        torch.save({'state_dict': getattr(algo, part).state_dict(),
                    'meta': {}}, path)
        cfg.model[f'{part}_ckpt'] = path
    cfg.model.architecture.backbone.norm_eval = True
    for split in cfg.train_dataloader.dataset.datasets:
        for step in split.pipeline:
            if step.type == 'RandomFlip':
                step.prob = 0.0
    cfg.randomness = dict(seed=0)
    cfg.train_cfg.val_interval = 100  # no evaluation
    cfg.custom_imports.imports = list(cfg.custom_imports.imports) + [
        'rank_losses_hook']
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='mmengine.RankLossesHook')]
    return root, cfg


def run(root, cfg, name, launcher, extra=()):
    cfg = cfg.copy()
    cfg.work_dir = str(root / name)
    path = str(root / f'{name}.py')
    cfg.dump(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [HERE, os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run(launcher + [TRAIN, path, *extra], cwd=REPO,
                            env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    per_rank = []
    for rank in range(2):
        path = osp.join(cfg.work_dir, f'losses_rank{rank}.jsonl')
        if osp.exists(path):
            with open(path) as f:
                per_rank.append([json.loads(line) for line in f])
    return per_rank


def test_two_processes_log_the_losses_of_one(config):
    root, cfg = config
    single = run(root, cfg.copy(), 'single', [sys.executable])
    cfg.train_dataloader.batch_size = 1  # 2 processes x 1 image
    ddp = run(root, cfg, 'ddp', [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_addr=127.0.0.1', f'--master_port={free_port()}'],
        extra=['--launcher', 'pytorch'])
    assert len(single) == 1 and len(ddp) == 2
    assert [r['iter'] for r in single[0]] == [0, 1]
    assert [r['iter'] for r in ddp[0]] == [r['iter'] for r in ddp[1]] == \
        [0, 1]
    keys = [k for k in single[0][0] if k.startswith(('distill.',
                                                      'student.'))]
    assert {'distill.loss_low', 'distill.loss_high', 'distill.loss_amp_full',
            'distill.loss_amp_high'} <= set(keys)
    for it in range(2):
        for key in keys:
            mean = (ddp[0][it][key] + ddp[1][it][key]) / 2
            assert mean == pytest.approx(single[0][it][key], rel=1e-4,
                                         abs=1e-7), (it, key)
        # the ranks really saw different images
        assert ddp[0][it]['distill.loss_low'] != ddp[1][it][
            'distill.loss_low']
    shutil.rmtree(root / 'ddp', ignore_errors=True)


def test_scale_free_variant_trains_under_ddp(config):
    """ScaleFreeDS2D2Distill takes gradient norms inside the forward
    (``torch.autograd.grad`` to the FPN levels): DDP's reducer must still
    see one backward per iteration. Each rank rescales its own terms."""
    root, cfg = config
    cfg = cfg.copy()
    cfg.model.type = 'ScaleFreeDS2D2Distill'
    cfg.model.share = 0.5
    cfg.train_dataloader.batch_size = 1
    ddp = run(root, cfg, 'ddp_scale_free', [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_addr=127.0.0.1', f'--master_port={free_port()}'],
        extra=['--launcher', 'pytorch'])
    assert len(ddp) == 2
    for rank in ddp:
        assert [r['iter'] for r in rank] == [0, 1]
        for record in rank:
            for term in ('low', 'high', 'amp_full', 'amp_high'):
                scale = record[f'distill.scale_{term}']
                assert 0 < scale < float('inf'), (term, scale)
                assert record[f'distill.loss_{term}'] > 0
    # each rank's factors come from its own image's gradients
    assert ddp[0][0]['distill.scale_low'] != ddp[1][0]['distill.scale_low']
    assert osp.isfile(osp.join(root, 'ddp_scale_free', 'epoch_1.pth'))
    shutil.rmtree(root / 'ddp_scale_free', ignore_errors=True)
