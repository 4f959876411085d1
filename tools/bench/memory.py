"""Memory of a step, and proof that teacher-only passes keep no graph.

Peak memory: CUDA only (``torch.cuda.max_memory_allocated`` around each
step); on the CPU it is not measured. The graph check counts, with
``torch.autograd.graph.saved_tensors_hooks``, the bytes autograd saves for
backward during the teacher's feature pass as DS2D2 runs it (``no_grad``),
during the same pass with grad (the control: it must see a graph), and
during the teacher-only module calls of a whole DS2D2 step (calls of the
teacher's or the amplifier's modules whose inputs need no grad).
"""
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import Tensor, nn

from .step import step_cases

MiB = 2.0**20


def peak_mb(fn: Callable[[], object],
            device: torch.device) -> Optional[float]:
    """MiB allocated at the peak of ``fn()`` beyond what was allocated
    before it; None on the CPU (not measured)."""
    if device.type != 'cuda':
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / MiB


def _inputs_need_grad(args: tuple) -> bool:
    return any(isinstance(a, Tensor) and a.requires_grad for a in args) or \
        any(_inputs_need_grad(tuple(a)) for a in args
            if isinstance(a, (tuple, list)))


@contextmanager
def saved_bytes(modules: Optional[Sequence[nn.Module]] = None
                ) -> Iterator[dict]:
    """Count what autograd saves for backward while the block runs.

    Args:
        modules (Sequence[nn.Module], optional): Count only during calls of
            these modules whose tensor inputs need no grad; None: count
            everything.

    Yields:
        dict: ``bytes`` (distinct storages) and ``calls`` (the counted
        module calls), filled in while the block runs.
    """
    counts, storages, active = dict(bytes=0, calls=0), set(), []

    def enter(module, args) -> None:
        teacher_only = not _inputs_need_grad(args)
        counts['calls'] += teacher_only
        active.append(teacher_only)

    def leave(module, args, output) -> None:
        active.pop()

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if (modules is None or any(active)) and \
                storage.data_ptr() not in storages:
            storages.add(storage.data_ptr())
            counts['bytes'] += storage.nbytes()
        return tensor

    handles = []
    for m in modules or ():
        handles.append(m.register_forward_pre_hook(enter))
        handles.append(m.register_forward_hook(leave))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield counts
    finally:
        for handle in handles:
            handle.remove()


def bench_memory(name: str, algorithm, data: dict,
                 device: torch.device) -> dict:
    """Peak memory of both steps, and the graph check, for one detector."""
    cases = step_cases(algorithm, data)
    row = dict(detector=name)
    for label in ('student', 'ds2d2'):
        row[f'{label}_peak_mb'] = None
        if device.type == 'cuda':
            step = cases[f'{label}_step']
            step()  # warm: lazily allocated buffers are not the step's
            algorithm.zero_grad(set_to_none=True)
            row[f'{label}_peak_mb'] = peak_mb(step, device)
    row['peak_ratio'] = None if device.type != 'cuda' else \
        row['ds2d2_peak_mb'] / row['student_peak_mb']

    teacher = algorithm.teacher
    with saved_bytes() as alone:
        cases['teacher_features']()
    teacher.requires_grad_(True)  # the control: a pass that keeps a graph
    try:
        with saved_bytes() as control:
            teacher.extract_feat(data['inputs'])
    finally:
        teacher.requires_grad_(False)
    frozen = [teacher]
    if getattr(algorithm, 'amplifier', None) is not None:
        frozen.append(algorithm.amplifier)
    with saved_bytes([m for f in frozen for m in f.modules()]) as in_step:
        cases['ds2d2_step']()
    algorithm.zero_grad(set_to_none=True)
    row.update(teacher_saved_mb=alone['bytes'] / MiB,
               teacher_saved_grad_mb=control['bytes'] / MiB,
               step_teacher_only_saved_mb=in_step['bytes'] / MiB,
               step_teacher_only_calls=in_step['calls'])
    return row
