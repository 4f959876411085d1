"""The parts of ``tools/benchmark.py``, one concern per module.

- :mod:`.disw`: ``disw_pyramid`` against the per-box ``disw_reference``;
- :mod:`.stream`: the explicit stream (``WaveletConnector`` +
  ``DISWSpectralLoss``), forward and backward;
- :mod:`.step`: a ``DS2D2Distill`` training step against its floor: the
  student's own step, the teacher's feature pass and the amplifier-head
  passes, through the public API;
- :mod:`.floor`: those head passes (and, for RoI heads, the step's RoI
  extractions) rebuilt from module calls on the step's inputs;
- :mod:`.memory`: peak memory per step (CUDA), and the bytes autograd saves
  in teacher-only passes;
- :mod:`.report`: the targets and the printed tables;
- :mod:`.inputs` (random boxes, data samples) and :mod:`.timing`
  (``torch.utils.benchmark.Timer``) serve them.

Scripts under ``tools/`` import it as ``bench``.
"""
from .disw import bench_disw
from .floor import (amplifier_records, floor_cases, head_passes,
                    roi_extractions, step_records)
from .memory import bench_memory, peak_mb, saved_bytes
from .report import format_report, targets
from .step import (DETECTORS, available_detectors, bench_step,
                   build_algorithm, make_batch, model_config, step_figures)
from .stream import bench_stream, build_stream
from .timing import median_time

__all__ = [
    'DETECTORS', 'amplifier_records', 'available_detectors', 'bench_disw',
    'bench_memory', 'bench_step', 'bench_stream', 'build_algorithm',
    'build_stream', 'floor_cases', 'format_report', 'head_passes',
    'make_batch', 'median_time', 'model_config', 'peak_mb',
    'roi_extractions', 'saved_bytes', 'step_figures', 'step_records',
    'targets'
]
