"""The explicit stream: ``WaveletConnector`` + ``DISWSpectralLoss``.

Built from a DS2D2 config's distiller (the student connector with its 1x1
adapter and DWT, the teacher's DWT, the spectral loss with its DISW
weights), forward and backward on given FPN features.
"""
import importlib
import math
from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn

from .inputs import STRIDES, data_samples, random_boxes
from .timing import median_time


def build_stream(distiller: dict) -> Dict[str, nn.Module]:
    """The explicit stream's modules, built from a distiller config.

    Args:
        distiller (dict): ``model.distiller`` of a ``configs/ds2d2_*.py``
            config.

    Returns:
        dict: ``student_bands``, ``teacher_bands`` (connectors) and
        ``loss`` (the ``DISWSpectralLoss``).

    Raises:
        ValueError: If the distiller has no ``DISWSpectralLoss``.
    """
    from mmrazor.registry import MODELS
    importlib.import_module('ds2d2_mmrazor')  # registers its modules

    def build(cfg: dict) -> nn.Module:
        return MODELS.build(dict(dict(_scope_='mmrazor'), **cfg))

    for name, cfg in distiller['distill_losses'].items():
        if cfg['type'].split('.')[-1] == 'DISWSpectralLoss':
            mapping = distiller['loss_forward_mappings'][name]
            connectors = distiller['connectors']
            return dict(
                student_bands=build(
                    connectors[mapping['student']['connector']]),
                teacher_bands=build(
                    connectors[mapping['teacher']['connector']]),
                loss=build(cfg))
    raise ValueError(
        f"the distiller has no DISWSpectralLoss among its distill_losses "
        f"{list(distiller['distill_losses'])}: the explicit stream needs "
        'one (see configs/ds2d2_retina_r18_r101_dior.py)')


def stream_cases(modules: Dict[str, nn.Module], student: Sequence[Tensor],
                 teacher: Sequence[Tensor],
                 samples: list) -> Dict[str, Callable[[], object]]:
    """Callables of the stream on these features: ``forward`` (its loss
    terms) and ``total`` (their sum, forward + backward)."""
    device = student[0].device
    for module in modules.values():
        module.to(device)
    student = [f.detach().requires_grad_() for f in student]
    teacher = [f.detach() for f in teacher]

    def forward() -> Dict[str, Tensor]:
        return modules['loss'](modules['student_bands'](student),
                               modules['teacher_bands'](teacher),
                               data_samples=samples)

    def total() -> None:
        for f in student:
            f.grad = None
        modules['student_bands'].zero_grad(set_to_none=True)
        sum(forward().values()).backward()

    return dict(forward=forward, total=total)


def bench_stream(distiller: dict, size: int, channels: int, batch: int,
                 objects: int, min_run_time: float, seed: int,
                 device: torch.device) -> List[dict]:
    """Time the stream on random features of five FPN levels.

    Args:
        distiller (dict): The distiller config the modules come from.
        size (int): Square padded input size, px.
        channels (int): FPN channels (those of the config's connectors).
        batch (int): Images.
        objects (int): Boxes per image (sides 8 px to ``size`` / 4).
        min_run_time (float): Seconds of timed calls per case.
        seed (int): Seed of features and boxes.
        device (torch.device): Where it runs.

    Returns:
        list[dict]: One row: ``forward_ms``, ``backward_ms``, ``total_ms``.
    """
    generator = torch.Generator().manual_seed(seed)
    shapes = [(batch, channels, math.ceil(size / s), math.ceil(size / s))
              for s in STRIDES]
    student = [torch.randn(s, generator=generator).to(device)
               for s in shapes]
    teacher = [torch.randn(s, generator=generator).to(device)
               for s in shapes]
    boxes = [random_boxes(objects, size, False, generator, 8, size / 4)
             .to(device) for _ in range(batch)]
    samples = data_samples(boxes, size, 20, generator)
    cases = stream_cases(build_stream(distiller), student, teacher, samples)
    times = {k: median_time(fn, min_run_time) for k, fn in cases.items()}
    return [dict(input=size, levels=len(STRIDES), channels=channels,
                 batch=batch, forward_ms=1e3 * times['forward'],
                 backward_ms=1e3 * (times['total'] - times['forward']),
                 total_ms=1e3 * times['total'])]
