"""Measure how hard each loss term pulls on the student's FPN features."""
import contextlib
import json
import os.path as osp
import random
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor

LossValue = Union[Tensor, Sequence[Tensor]]


def gradient_norm(value: LossValue, inputs: Sequence[Tensor]) -> Tensor:
    """L2 norm of the gradient of ``value`` with respect to ``inputs``.

    The norm is taken over all inputs together (e.g. the five FPN levels as
    one vector): ``sqrt(sum_l ||d value / d inputs[l]||^2)``, in float32 on
    the inputs' device (no host synchronisation). A value that does not
    depend on the inputs gives 0. Nothing is accumulated in ``.grad`` and
    the graph is kept, so the caller can still backpropagate.

    Args:
        value (Tensor | list[Tensor]): A scalar loss; a list (e.g.
            MMDetection's per-level losses) counts as its sum.
        inputs (Sequence[Tensor]): Tensors of the graph it was computed
            from.

    Returns:
        Tensor: The norm, a float32 scalar.
    """
    if not isinstance(value, Tensor):
        value = sum(value)
    zero = inputs[0].new_zeros((), dtype=torch.float32)
    if not value.requires_grad:
        return zero
    grads = torch.autograd.grad(value, list(inputs), retain_graph=True,
                                allow_unused=True)
    squared = [g.float().pow(2).sum() for g in grads if g is not None]
    return torch.stack(squared).sum().sqrt() if squared else zero


def gradient_norms(terms: Dict[str, LossValue],
                   inputs: Sequence[Tensor]) -> Dict[str, float]:
    """:func:`gradient_norm` of each named term, as Python floats.

    Args:
        terms (dict[str, Tensor | list[Tensor]]): Named scalar losses.
        inputs (Sequence[Tensor]): Tensors of the graph the terms were
            computed from.

    Returns:
        dict[str, float]: Term name -> gradient norm.
    """
    return {name: float(gradient_norm(value, inputs))
            for name, value in terms.items()}


def split_terms(losses: Dict[str, LossValue]) -> Dict[str, LossValue]:
    """The task loss as one term, and each distillation term on its own.

    ``task`` sums the detector's own losses (keys containing ``loss``;
    MMRazor prefixes them ``student.``); keys beginning ``distill.`` stay
    separate, without the prefix. Non-loss entries (accuracies) are left out.
    """
    task: List[Tensor] = []
    terms: Dict[str, LossValue] = {}
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        if key.startswith('distill.'):
            terms[key[len('distill.'):]] = value
        else:
            task.extend([value] if isinstance(value, Tensor) else value)
    if not task:
        raise ValueError(f'no task loss among {sorted(losses)}: expected '
                         'the detector\'s own loss terms')
    return dict(task=sum(task), **terms)


@contextlib.contextmanager
def unchanged_state(model: torch.nn.Module) -> Iterator[None]:
    """Undo, on exit, what a training-mode pass changes besides the graph:
    the model's buffers (BatchNorm running statistics, batch counters) and
    the state of the random number generators (Python's, NumPy's, torch's
    on the CPU and on every CUDA device)."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    python, numpy = random.getstate(), np.random.get_state()
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() \
        else None
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@HOOKS.register_module()
class GradientBalanceHook(Hook):
    """Record each loss term's gradient norm on the student's FPN output.

    At the first and the last ``window`` training iterations, the hook runs
    the model on the iteration's batch once more (after the update) and
    computes, for the task loss and for each distillation term, the norm of
    its gradient with respect to the student's FPN levels
    (:func:`gradient_norms`) and its ratio to the task loss's. Results are
    appended to ``WORK_DIR/gradient_balance.json`` (one JSON object a line:
    ``iter``, ``phase``, ``norms``, ``ratios``) and logged. Works for plain
    detectors (only ``task``), MMRazor's distillation algorithms and
    ``DS2D2Distill``.

    Costs one extra forward and one backward per term at each measured
    iteration, nothing at the others. The measurement changes nothing the
    run goes on with: the extra forward runs in training mode (the losses
    as trained), so the model's buffers (BatchNorm running statistics) and
    the random number generators it draws from (e.g. a RoI sampler) are
    restored afterwards, and no gradient is accumulated. A run with the
    hook trains exactly as one without it.

    Args:
        window (int): Iterations measured at the start and at the end of
            training. Defaults to 3.
        neck (str): Attribute path of the student's FPN from the detector.
            Defaults to ``'neck'``.
    """

    priority = 'LOW'

    def __init__(self, window: int = 3, neck: str = 'neck') -> None:
        if window < 1:
            raise ValueError(f'window={window}: expected >= 1')
        self.window = window
        self.neck = neck

    def _phase(self, runner) -> Optional[str]:
        done = runner.iter + 1  # this iteration has just finished
        if done <= self.window:
            return 'early'
        if done > runner.max_iters - self.window:
            return 'late'
        return None

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        phase = self._phase(runner)
        if phase is None or data_batch is None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        detector = getattr(model, 'student', model)
        neck = detector
        for name in self.neck.split('.'):
            neck = getattr(neck, name)
        feats: List[Tensor] = []

        def record(module, args, output) -> None:
            feats.extend([output] if isinstance(output, Tensor) else output)

        handle = neck.register_forward_hook(record)
        try:
            with unchanged_state(model):
                data = model.data_preprocessor(data_batch, True)
                losses = model._run_forward(data, mode='loss')
                norms = gradient_norms(split_terms(losses), feats)
        finally:
            handle.remove()
        task = norms['task']
        ratios = {k: v / task if task > 0 else float('nan')
                  for k, v in norms.items() if k != 'task'}
        entry = dict(iter=runner.iter + 1, phase=phase, norms=norms,
                     ratios=ratios)
        with open(osp.join(runner.work_dir, 'gradient_balance.json'),
                  'a') as f:
            f.write(json.dumps(entry) + '\n')
        runner.logger.info(
            f'gradient balance ({phase}, iter {runner.iter + 1}): task '
            f'{task:.3g}; ' + ', '.join(f'{k} {v:.3g}x'
                                        for k, v in ratios.items()))
