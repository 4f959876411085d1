"""A DS2D2 run is reproducible and survives interruption: the same seed
gives the same per-iteration losses; a run killed mid-epoch and resumed
with ``resume=True`` (``--resume``) continues from its last checkpoint with
the same teacher / amplifier weights, optimizer state and schedule, and
logs the losses of an uninterrupted run.

MMEngine checkpoints neither the RNG states nor the data order inside an
epoch (the sampler is reseeded per epoch): the run resumes at the last
epoch boundary, and random augmentation after resuming draws from a
reseeded generator. The test therefore switches random flips off."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from synthetic import tiny
from mmrazor.registry import MODELS

from ..conftest import make_dior

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'ds2d2_retina_r18_r101_dior.py')


class Interrupted(Exception):
    pass


class RecordLosses(Hook):
    """Per iteration: the logged loss terms and the learning rate; raises
    Interrupted (a killed job) before iteration ``stop_at``."""

    def __init__(self, stop_at=None):
        self.losses, self.lrs = {}, {}
        self.stop_at = stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.stop_at:
            raise Interrupted

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses[runner.iter] = {k: float(v) for k, v in outputs.items()}
        self.lrs[runner.iter] = runner.optim_wrapper.get_lr()['lr'][0]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Generated DIOR data and (untrained) teacher and amplifier
    checkpoints of the tiny architectures."""
    root = tmp_path_factory.mktemp('resume')
    data = make_dior(str(root / 'DIOR')) + '/'
    cfg = tiny.tiny_config(CONFIG, data, str(root / 'unused'))
    model = cfg.model
    model.update(teacher_ckpt=None, amplifier_ckpt=None)
    torch.manual_seed(0)
    algo = MODELS.build(model)
    algo.init_weights()
    paths = {}
    for part in ('teacher', 'amplifier'):
        paths[part] = str(root / f'{part}.pth')
        torch.save({'state_dict': getattr(algo, part).state_dict(),
                    'meta': {}}, paths[part])
    return dict(root=root, data=data, ckpts=paths)


def train(setup, name, stop_at=None, resume=False):
    """Two epochs of 2 iterations, a checkpoint per epoch, seed 0."""
    cfg = tiny.tiny_config(CONFIG, setup['data'],
                                str(setup['root'] / name), max_epochs=2)
    cfg.model.update(teacher_ckpt=setup['ckpts']['teacher'],
                     amplifier_ckpt=setup['ckpts']['amplifier'])
    cfg.randomness = dict(seed=0)
    cfg.train_cfg.val_interval = 100  # no evaluation
    cfg.default_hooks.checkpoint.interval = 1
    for split in cfg.train_dataloader.dataset.datasets:
        for step in split.pipeline:
            if step.type == 'RandomFlip':
                step.prob = 0.0
    cfg.resume = resume
    hook = RecordLosses(stop_at)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(hook)
    try:
        runner.train()
    except Interrupted:
        pass
    return runner, hook


@pytest.fixture(scope='module')
def runs(setup):
    out = dict(full=train(setup, 'full'))
    out['killed'] = train(setup, 'killed', stop_at=3)
    out['resumed'] = train(setup, 'killed', resume=True)
    return out


def test_same_seed_same_losses(runs):
    # two runs of the same config: the killed one before it was killed
    full, killed = runs['full'][1], runs['killed'][1]
    assert sorted(full.losses) == [0, 1, 2, 3]
    assert {'distill.loss_low', 'distill.loss_amp_high',
            'student.loss_cls'} <= set(full.losses[0])
    assert sorted(killed.losses) == [0, 1, 2]
    for it in (0, 1, 2):
        assert killed.losses[it] == full.losses[it]  # bit for bit on CPU


def test_resumed_run_continues_like_the_uninterrupted_one(runs, setup):
    full, killed, resumed = (runs[k][1] for k in ('full', 'killed',
                                                  'resumed'))
    assert sorted(killed.losses) == [0, 1, 2]  # killed in epoch 2
    # resumed from epoch_1.pth: iterations 2 and 3, with the same losses
    # and learning rates as the uninterrupted run
    assert sorted(resumed.losses) == [2, 3]
    for it in (2, 3):
        assert resumed.lrs[it] == full.lrs[it]
        for key, value in full.losses[it].items():
            assert resumed.losses[it][key] == pytest.approx(
                value, rel=1e-5, abs=1e-8), (it, key)
    # same final student, and teacher / amplifier still their checkpoints
    end_full = runs['full'][0].model.state_dict()
    end_resumed = runs['resumed'][0].model.state_dict()
    for key, value in end_full.items():
        torch.testing.assert_close(end_resumed[key], value, rtol=1e-5,
                                   atol=1e-7, msg=key)
    model = runs['resumed'][0].model
    for part in ('teacher', 'amplifier'):
        saved = torch.load(setup['ckpts'][part])['state_dict']
        for key, value in getattr(model, part).state_dict().items():
            assert torch.equal(value, saved[key]), (part, key)
