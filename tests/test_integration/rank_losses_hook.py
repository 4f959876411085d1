"""A hook for the distributed tests (imported by the training subprocesses
through ``custom_imports``): each rank appends its own loss terms of every
iteration to ``<work_dir>/losses_rank<r>.jsonl`` (MMEngine logs rank 0
only)."""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankLossesHook(Hook):

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        path = osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl')
        with open(path, 'a') as f:
            f.write(json.dumps(dict(
                iter=runner.iter,
                **{k: float(v) for k, v in outputs.items()})) + '\n')
