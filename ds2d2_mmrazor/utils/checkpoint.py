"""Load MMEngine Runner checkpoints with ``weights_only=True`` (torch >= 2.6).

Since torch 2.6, ``torch.load`` defaults to weights-only unpickling, which
refuses every global that is not allow-listed. MMEngine 0.10.7 calls plain
``torch.load``, and a full Runner checkpoint (teacher checkpoints, resume)
pickles its ``MessageHub`` state: ``HistoryBuffer`` objects holding numpy
arrays and scalars, and the buffers' statistics methods, which pickle as
``getattr(HistoryBuffer, 'mean')``. Allow-listing exactly those globals lets
such checkpoints load while any other global (and so arbitrary code) is still
refused. Weights-only loading is never switched off.

Delete this module once MMEngine loads with an allow-list itself.
"""
import pickle
from typing import Any, Callable, List, Tuple

import torch

_done = False


def _history_buffer_method(obj: Any, name: str) -> Callable:
    """A ``getattr`` restricted to ``HistoryBuffer``'s statistics methods.

    Registered under the name ``builtins.getattr``, so a checkpoint can look
    up ``HistoryBuffer.mean`` and friends but nothing else.
    """
    from mmengine.logging import HistoryBuffer

    # The built-in statistics, plus any registered with
    # HistoryBuffer.register_statistics in this process.
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if obj is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'checkpoint asks for getattr({obj!r}, {name!r}); only the '
            f'HistoryBuffer statistics methods {sorted(allowed)} are allowed')
    return getattr(HistoryBuffer, name)


def runner_checkpoint_globals() -> List[Tuple[Any, str]]:
    """The (object, pickled name) pairs a Runner checkpoint needs."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    pairs = [(HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
             (_history_buffer_method, 'builtins.getattr'),
             (np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # Checkpoints written under numpy 1.x name numpy.core, 2.x numpy._core.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        pairs += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    # numpy.dtype(...) returns instances of per-type classes (Float64DType,
    # ...) that the unpickler then BUILDs: allow the numeric ones.
    for name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
                 'uint32', 'uint64', 'float16', 'float32', 'float64'):
        cls = type(np.dtype(name))
        pairs.append((cls, f'{cls.__module__}.{cls.__name__}'))
    return pairs


def allow_runner_checkpoints() -> None:
    """Allow-list the globals of MMEngine Runner checkpoints (idempotent).

    A no-op on torch < 2.6, which does not load weights-only by default.
    """
    global _done
    if _done or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    version = tuple(int(v) for v in torch.__version__.split('.')[:2])
    if version < (2, 6):
        return
    torch.serialization.add_safe_globals(runner_checkpoint_globals())
    _done = True
