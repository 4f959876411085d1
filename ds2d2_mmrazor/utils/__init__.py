from .checkpoint import allow_runner_checkpoints, runner_checkpoint_globals

__all__ = ['allow_runner_checkpoints', 'runner_checkpoint_globals']
