"""StopOnInvalidLossHook stops the Runner at the first non-finite loss,
names the terms, and no checkpoint of the broken weights is written."""
import math
import os

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import ds2d2_mmrazor  # noqa: F401  (registers the hook)
from ds2d2_mmrazor.engine import StopOnInvalidLossHook
from mmdet.registry import HOOKS


class Toy(BaseModel):
    """Two loss terms; ``distill.loss_x`` turns NaN from iteration
    ``nan_from`` on (counted in forward calls)."""

    def __init__(self, nan_from):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.calls = 0
        self.nan_from = nan_from

    def forward(self, inputs, mode='tensor'):
        out = self.fc(torch.stack(inputs)).squeeze(1)
        self.calls += 1
        scale = math.nan if self.calls > self.nan_from else 1.0
        return {'student.loss_cls': out.pow(2).mean(),
                'distill.loss_x': scale * out.abs().mean()}


class Data(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([i / 8, 1.]))


def run(work_dir, nan_from):
    runner = Runner(
        model=Toy(nan_from), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Data(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        custom_hooks=[dict(type='StopOnInvalidLossHook')],
        default_scope='mmdet')
    runner.train()
    return runner


def test_registered_in_mmdet_and_checks_every_iteration():
    assert HOOKS.get('StopOnInvalidLossHook') is StopOnInvalidLossHook
    assert StopOnInvalidLossHook().interval == 1


def test_stops_at_the_first_nan_before_a_checkpoint(tmp_path):
    # 4 iterations an epoch; NaN from the 6th iteration (epoch 2)
    with pytest.raises(RuntimeError) as info:
        run(tmp_path, nan_from=5)
    msg = str(info.value)
    assert msg.startswith('non-finite loss at iteration 6 (epoch 2): '
                          'distill.loss_x=nan, loss=nan.')
    assert 'student.loss_cls' not in msg
    assert '--resume' in msg and 'clip_grad' in msg
    # the epoch-1 checkpoint exists, nothing after it
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) \
        == ['epoch_1.pth']


def test_finite_run_is_untouched(tmp_path):
    runner = run(tmp_path, nan_from=10**9)
    assert runner.iter == 12


def test_graph_tensors_are_read_without_a_warning(recwarn):
    """Logged values that are still part of the graph (as some losses log
    them) are read detached: no 'requires_grad ... to a scalar' warning."""
    hook = StopOnInvalidLossHook()
    runner = type('Runner', (), dict(iter=4, epoch=0))()
    weight = torch.ones((), requires_grad=True)
    hook.after_train_iter(runner, 0, outputs=dict(loss=weight * 2))
    assert not [w for w in recwarn if 'requires_grad' in str(w.message)]
    with pytest.raises(RuntimeError, match=r'iteration 5 .*: loss=nan'):
        hook.after_train_iter(
            runner, 0, outputs=dict(loss=weight * float('nan')))
