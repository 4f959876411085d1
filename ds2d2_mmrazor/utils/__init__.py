from .stage_checkpoint import load_stage_checkpoint, stage_state_dict

__all__ = ['load_stage_checkpoint', 'stage_state_dict']
