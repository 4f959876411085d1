"""GradientBalanceHook: each term's gradient norm on the student FPN, and its
ratio to the task loss's, against hand-computed gradients."""
import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from torch import nn

from ds2d2_mmrazor.engine import (GradientBalanceHook, gradient_norms,
                                  split_terms)


def test_gradient_norms_match_hand_computation():
    a = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], requires_grad=True)
    b = torch.tensor([2.0, -1.0, 4.0, 0.0], requires_grad=True)
    unrelated = torch.tensor(5.0, requires_grad=True)
    terms = dict(
        linear=(3 * a).sum(),                 # d/da = 3, d/db = 0
        square=(b**2).sum(),                  # d/db = 2b
        both=[(a * a).sum(), (-b).sum()],     # a list counts as its sum
        unrelated=unrelated * 2,
        constant=torch.tensor(1.0))
    norms = gradient_norms(terms, [a, b])
    assert norms['linear'] == pytest.approx(3 * math.sqrt(6))
    assert norms['square'] == pytest.approx(2 * b.norm().item())
    # d/da = 2a, d/db = -1
    assert norms['both'] == pytest.approx(
        math.sqrt(4 * (a**2).sum().item() + 4))
    assert norms['unrelated'] == 0.0 and norms['constant'] == 0.0
    # nothing accumulated, the graph kept
    assert a.grad is None and b.grad is None
    terms['square'].backward()
    assert torch.equal(b.grad, 2 * b.detach())


def test_split_terms_sums_the_task_and_keeps_distill_terms():
    x = torch.ones(2, requires_grad=True)
    losses = {
        'student.loss_cls': [x.sum(), 2 * x.sum()],
        'student.loss_bbox': 3 * x.sum(),
        'student.acc': torch.tensor(99.0),
        'distill.loss_spectral.loss_low': 5 * x.sum(),
    }
    terms = split_terms(losses)
    assert set(terms) == {'task', 'loss_spectral.loss_low'}
    assert terms['task'].item() == pytest.approx(12.0)
    with pytest.raises(ValueError, match='no task loss'):
        split_terms({'distill.loss_x': x.sum()})


class TinyDistilled(BaseModel):
    """A 'student' whose neck is one linear map; task = mean(y^2), one
    distillation term = 0.5 * sum(y) (y = the neck output)."""

    def __init__(self):
        super().__init__()
        self.student = nn.Module()
        self.student.neck = nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.student.neck.weight.copy_(
                torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]))

    def forward(self, inputs, data_samples=None, mode='loss'):
        y = self.student.neck(inputs)
        return {'student.loss_task': (y**2).mean(),
                'distill.loss_kd': 0.5 * y.sum()}


def test_hook_records_ratios_against_a_hand_computation(tmp_path):
    model = TinyDistilled()
    inputs = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    y = inputs @ model.student.neck.weight.T
    task_norm = (2 * y / y.numel()).norm().item()  # d mean(y^2) / dy
    kd_norm = 0.5 * math.sqrt(y.numel())            # d 0.5 sum(y) / dy
    runner = SimpleNamespace(
        model=model, iter=0, max_iters=10, work_dir=str(tmp_path),
        logger=logging.getLogger('test_gradient_balance'))
    hook = GradientBalanceHook(window=2)
    batch = dict(inputs=inputs, data_samples=None)
    for it in range(10):
        runner.iter = it
        hook.after_train_iter(runner, it, batch)
    with open(tmp_path / 'gradient_balance.json') as f:
        records = [json.loads(line) for line in f]
    # the first and the last two iterations only
    assert [(r['iter'], r['phase']) for r in records] == [
        (1, 'early'), (2, 'early'), (9, 'late'), (10, 'late')]
    for record in records:
        assert record['norms']['task'] == pytest.approx(task_norm)
        assert record['norms']['loss_kd'] == pytest.approx(kd_norm)
        assert record['ratios'] == {
            'loss_kd': pytest.approx(kd_norm / task_norm)}
    assert model.student.neck.weight.grad is None  # weights untouched


def test_hook_checks_its_window():
    with pytest.raises(ValueError, match='window=0'):
        GradientBalanceHook(window=0)


class TinyWithState(TinyDistilled):
    """TinyDistilled with a BatchNorm after the neck and a random draw in
    its forward (as a RoI sampler's): what a measuring pass must not
    change."""

    def __init__(self):
        super().__init__()
        self.student.norm = nn.BatchNorm1d(3)

    def forward(self, inputs, data_samples=None, mode='loss'):
        y = self.student.norm(self.student.neck(inputs))
        noise = torch.rand(1)  # consumes the generator
        return {'student.loss_task': (y**2).mean() + 0 * noise.sum(),
                'distill.loss_kd': 0.5 * y.sum()}


def test_the_measurement_changes_nothing_the_run_goes_on_with(tmp_path):
    """BatchNorm statistics, its batch counter and the random generators
    are as they were before the hook's extra training-mode pass."""
    import random

    import numpy as np
    model = TinyWithState().train()
    runner = SimpleNamespace(
        model=model, iter=0, max_iters=10, work_dir=str(tmp_path),
        logger=logging.getLogger('test_gradient_balance'))
    batch = dict(inputs=torch.tensor([[1.0, 2.0], [-1.0, 0.5],
                                      [3.0, 0.0]]), data_samples=None)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    GradientBalanceHook(window=1).after_train_iter(runner, 0, batch)
    after = model.state_dict()
    assert after['student.norm.num_batches_tracked'].item() == 0
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    # the generators continue where they were (as if seeded just now)
    draws = (torch.rand(2), random.random(), np.random.rand())
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    assert torch.equal(draws[0], torch.rand(2))
    assert draws[1] == random.random() and draws[2] == np.random.rand()
    # and it did measure, in training mode (batch statistics)
    with open(tmp_path / 'gradient_balance.json') as f:
        assert json.loads(f.readline())['norms']['loss_kd'] > 0
    assert model.student.norm.training
