"""Stop training on the first non-finite loss, naming the terms."""
import math
from typing import Optional

import torch
from mmdet.engine.hooks import CheckInvalidLossHook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class StopOnInvalidLossHook(CheckInvalidLossHook):
    """MMDetection's ``CheckInvalidLossHook``, made to stop every time.

    Checks every ``interval`` iterations (default: every iteration, so no
    checkpoint is ever written after a non-finite loss: the Runner's
    ``CheckpointHook`` runs after this hook) and raises a ``RuntimeError``
    naming the non-finite terms (``student.loss_bbox``,
    ``distill.loss_amp_full``, ...), the iteration and what to do.
    MMDetection's hook asserts, which ``python -O`` strips, and its error
    says nothing.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1;
            reading the loss costs one device synchronisation, which the
            logger pays anyway.
    """

    def __init__(self, interval: int = 1) -> None:
        super().__init__(interval)

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner,
                                                        self.interval):
            return
        # the logged values may still be graph tensors: read them detached
        values = {k: float(v.detach()) if isinstance(v, torch.Tensor)
                  else float(v) for k, v in outputs.items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        terms = ', '.join(f'{k}={v}' for k, v in sorted(bad.items()))
        raise RuntimeError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): {terms}. Training stops here, before a '
            'checkpoint of these weights is written. Resume from the last '
            'checkpoint with --resume after lowering the learning rate or '
            'setting optim_wrapper.clip_grad, or check the annotations of '
            'the batch (degenerate boxes?)')
