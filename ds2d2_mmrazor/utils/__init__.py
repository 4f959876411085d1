from .checkpoint import allow_runner_checkpoints, runner_checkpoint_globals
from .stage_checkpoint import load_stage_checkpoint, stage_state_dict

__all__ = [
    'allow_runner_checkpoints', 'runner_checkpoint_globals',
    'load_stage_checkpoint', 'stage_state_dict'
]
