"""DISW: ``disw_pyramid`` against the per-box ``disw_reference``.

Both build the DISW maps of the five FPN levels of one image:
:func:`~ds2d2_mmrazor.ops.disw_pyramid` in one call for all levels (as
``DISWSpectralLoss`` builds them), :func:`~ds2d2_mmrazor.ops.disw_reference`
(the definition, one Python iteration per box) once per level.
"""
from typing import List, Sequence

import torch

from .inputs import grid_sizes, random_boxes
from .timing import median_time


def bench_disw(sizes: Sequence[int], box_counts: Sequence[int],
               min_run_time: float, seed: int,
               device: torch.device) -> List[dict]:
    """Time both on random boxes, horizontal and rotated.

    Each case first checks that both give the same maps (atol 1e-5).

    Args:
        sizes (Sequence[int]): Square padded input sizes, px.
        box_counts (Sequence[int]): Boxes per image.
        min_run_time (float): Seconds of timed calls per function and case.
        seed (int): Seed of the boxes.
        device (torch.device): Where the boxes live.

    Returns:
        list[dict]: One row per (size, box type, count): ``fast_ms``,
        ``reference_ms`` and ``speedup``.
    """
    from ds2d2_mmrazor.ops import disw_pyramid, disw_reference
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for size in sizes:
        grids, hw = grid_sizes(size), (size, size)
        for box_type in ('horizontal', 'rotated'):
            for num in box_counts:
                boxes = [random_boxes(num, size, box_type == 'rotated',
                                      generator).to(device)]

                def fast(boxes=boxes, grids=grids, hw=hw):
                    return disw_pyramid(boxes, grids, hw)

                def reference(boxes=boxes, grids=grids, hw=hw):
                    return [disw_reference(boxes, g, hw) for g in grids]

                for a, b in zip(fast(), reference()):
                    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
                t_fast = median_time(fast, min_run_time)
                t_ref = median_time(reference, min_run_time)
                rows.append(dict(input=size, box_type=box_type, boxes=num,
                                 fast_ms=1e3 * t_fast,
                                 reference_ms=1e3 * t_ref,
                                 speedup=t_ref / t_fast))
    return rows
