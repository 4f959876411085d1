"""MMEngine Runner checkpoints load and resume with weights-only loading on."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import ds2d2_mmrazor  # noqa: F401  (allow-lists the Runner globals)
from ds2d2_mmrazor.utils import runner_checkpoint_globals
from ds2d2_mmrazor.utils.checkpoint import _history_buffer_method

needs_weights_only_default = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 6),
    reason='torch < 2.6 does not load weights-only by default')


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.bn(self.fc(torch.stack(inputs))).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - torch.stack(targets))**2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'), palette=[(1, 2, 3), (4, 5, 6)])

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([i / 8, 1.]),
                    targets=torch.tensor(i / 4))


class Interrupted(Exception):
    pass


class RecordIters(Hook):
    """Records the iterations run; raises Interrupted at `stop_at`."""

    def __init__(self, stop_at=None):
        self.iters = []
        self.stop_at = stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.stop_at:
            raise Interrupted  # as if the job were killed here
        self.iters.append(runner.iter)


def train(work_dir, resume=False, stop_at=None):
    """4 iterations of SGD on a toy model, a checkpoint every 2."""
    hook = RecordIters(stop_at)
    torch.manual_seed(0)  # the model is built before the Runner seeds
    runner = Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(), batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3],
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=[hook], resume=resume, randomness=dict(seed=0))
    runner.train()
    return runner, hook.iters


@pytest.fixture(scope='module')
def interrupted(tmp_path_factory):
    """A run killed after 2 of 4 iterations (its checkpoint on disk)."""
    work_dir = tmp_path_factory.mktemp('interrupted')
    with pytest.raises(Interrupted):
        train(work_dir, stop_at=2)
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']
    return work_dir


def _load_without_allow_list(ckpt):
    """In a fresh process that never imports ds2d2_mmrazor: the globals the
    checkpoint needs beyond torch's defaults, and torch.load's error."""
    code = ('import json, torch\n'
            f'ckpt = {ckpt!r}\n'
            'needed = torch.serialization.get_unsafe_globals_in_checkpoint('
            'ckpt)\n'
            'try:\n'
            '    torch.load(ckpt)\n'
            '    error = None\n'
            'except Exception as e:\n'
            '    error = str(e)\n'
            'print(json.dumps(dict(needed=needed, error=error)))\n')
    env = {k: v for k, v in os.environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    result = subprocess.run([sys.executable, '-c', code], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_weights_only_default
def test_runner_checkpoint_loads_with_exactly_the_allow_listed_globals(
        interrupted):
    ckpt = str(interrupted / 'iter_2.pth')
    plain = _load_without_allow_list(ckpt)
    # torch alone refuses it ...
    assert 'HistoryBuffer' in plain['error']
    # ... and everything it lacks is on our allow-list.
    allowed = {name for _, name in runner_checkpoint_globals()}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in plain['needed']
    assert set(plain['needed']) <= allowed
    state = torch.load(ckpt)  # default: weights_only=True
    assert state['meta']['iter'] == 2
    assert isinstance(state['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)


def test_resume_continues_where_the_run_stopped(interrupted, tmp_path):
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    resumed, iters = train(interrupted, resume=True)
    assert iters == [2, 3]
    uninterrupted, iters = train(tmp_path)
    assert iters == [0, 1, 2, 3]
    for (name, a), (_, b) in zip(resumed.model.state_dict().items(),
                                 uninterrupted.model.state_dict().items()):
        assert torch.allclose(a.float(), b.float()), name
    assert resumed.param_schedulers[0].last_step == \
        uninterrupted.param_schedulers[0].last_step
    # the schedule resumed too: the lr dropped at the milestone (iter 3)
    assert resumed.optim_wrapper.get_lr()['lr'] == pytest.approx([0.01])
    assert uninterrupted.optim_wrapper.get_lr()['lr'] == pytest.approx([0.01])


class _GetattrGadget:
    """Pickles as getattr(HistoryBuffer, '__init__')."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class _SystemCall:
    """Pickles as os.system('true'): arbitrary code."""

    def __reduce__(self):
        return os.system, ('true', )


@needs_weights_only_default
@pytest.mark.parametrize('payload,message', [
    (_GetattrGadget(), "getattr.*'__init__'.*only the HistoryBuffer"),
    (_SystemCall(), 'posix.system|os.system'),
])
def test_other_globals_are_still_refused(tmp_path, payload, message):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': payload}, path)
    with pytest.raises(Exception, match=message):
        torch.load(path)


def test_restricted_getattr_allows_only_statistics():
    assert _history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(Exception, match='only the HistoryBuffer'):
        _history_buffer_method(dict, 'mean')
