"""Load the checkpoint of an earlier DS2D2 stage, strictly and clearly."""
import pickle
import re
from typing import Dict, List

from mmengine.runner import CheckpointLoader
from torch import Tensor, nn

# BatchNorm's batch counters are not weights: checkpoints written by other
# tools may drop them; they are never required.
TOLERATED = re.compile(r'(^|\.)num_batches_tracked$')
SHOWN = 3  # keys quoted per kind of problem


def _parts(keys) -> List[str]:
    return sorted({k.split('.', 1)[0] for k in keys})


def _quote(keys: List[str]) -> str:
    more = f', ... ({len(keys)} in all)' if len(keys) > SHOWN else ''
    return ', '.join(keys[:SHOWN]) + more


def stage_state_dict(path: str, field: str = 'checkpoint') -> Dict[str,
                                                                   Tensor]:
    """The model weights of an MMEngine checkpoint (``state_dict`` entry, or
    the whole file for a bare state dict), loaded weights-only, without a
    DDP ``module.`` prefix.

    Raises:
        ValueError: If unpickling the file would need anything beyond
            tensors and the allow-listed MMEngine globals (the file is not
            loaded: it could run code).
    """
    try:
        checkpoint = CheckpointLoader.load_checkpoint(path,
                                                      map_location='cpu')
    except pickle.UnpicklingError as error:
        found = re.search(r'GLOBAL ([\w.]+)|global: ([\w.]+)', str(error))
        what = next(g for g in found.groups() if g) if found else 'objects'
        raise ValueError(
            f'{field} {path!r} was refused and not loaded: unpickling it '
            f'needs {what}, beyond the tensors and MMEngine records a '
            'checkpoint holds, so it could run arbitrary code. Use a '
            'checkpoint written by MMEngine\'s Runner (tools/train.py), '
            'or, if you trust the file, re-save its state_dict as plain '
            'tensors') from error
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def load_stage_checkpoint(model: nn.Module, path: str, field: str,
                          role: str, own_parts_only: bool = False) -> None:
    """Load ``path`` into ``model`` if, and only if, it is a checkpoint of
    that very architecture; otherwise raise, saying what does not fit.

    Keys and shapes must match exactly, except BatchNorm
    ``num_batches_tracked`` counters (tolerated when missing or extra).
    Recognised mistakes get a specific hint: a DS2D2Distill (stage 3)
    checkpoint, a checkpoint of another detector type (different top-level
    parts, e.g. ``roi_head`` instead of ``bbox_head``), and one of another
    size (shape mismatches: depth, channels, ``num_classes``).

    Args:
        model (nn.Module): The teacher or the high-frequency amplifier.
        path (str): Checkpoint file.
        field (str): Config field that gave ``path``, for the message
            (e.g. 'model.teacher_ckpt').
        role (str): What ``model`` is, for the message (e.g. 'teacher').
        own_parts_only (bool): Load only the checkpoint's entries under the
            top-level parts ``model`` has (e.g. ``bbox_head`` of a full
            detector checkpoint into a head-only model); those must fit
            exactly. Defaults to False: the whole checkpoint must fit.

    Raises:
        ValueError: If the checkpoint does not fit ``model``, or would need
            arbitrary code to unpickle.
    """
    full = stage_state_dict(path, field)
    own = model.state_dict()
    if own_parts_only:
        parts = set(_parts(own))
        state = {k: v for k, v in full.items()
                 if k.split('.', 1)[0] in parts}
    else:
        state = full
    missing = sorted(k for k in own.keys() - state.keys()
                     if not TOLERATED.search(k))
    unexpected = sorted(k for k in state.keys() - own.keys()
                        if not TOLERATED.search(k))
    wrong_shape = sorted(k for k in own.keys() & state.keys()
                         if own[k].shape != state[k].shape)
    if not (missing or unexpected or wrong_shape):
        model.load_state_dict(state, strict=False)  # only counters differ
        return
    what = f'{field} {path!r} does not fit the {role} ' \
        f'({type(model).__name__})'
    if full and all(k.startswith(('architecture.', 'teacher.',
                                  'distiller.', 'amplifier.'))
                    for k in full):
        raise ValueError(
            f'{what}: it is a DS2D2Distill (stage 3) checkpoint. Give the '
            f'{role}\'s own checkpoint (stage 1 for the teacher, stage 2 for '
            'the amplifier)')
    problems = []
    if missing:
        problems.append(f'missing keys: {_quote(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_quote(unexpected)}')
    if wrong_shape:
        k = wrong_shape[0]
        problems.append(
            f'{len(wrong_shape)} shape mismatches, e.g. {k}: checkpoint '
            f'{list(state[k].shape)}, {role} {list(own[k].shape)} (another '
            'depth, width or num_classes?)')
    hint = ''
    if not set(_parts(own)) <= set(_parts(full)) or \
            (_parts(full) != _parts(own) and not own_parts_only):
        hint = (f' The checkpoint has the parts {_parts(full)}, the {role} '
                f'{_parts(own)}: it belongs to another detector type.')
    raise ValueError(
        f'{what}: ' + '; '.join(problems) + '.' + hint +
        f' Point {field} to a checkpoint trained with the {role}\'s config.')
