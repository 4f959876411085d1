"""The DS2D2 training step against its floor.

A ``DS2D2Distill`` is built from the repository's config and timed through
its public API and its modules' calls: (a) the DS2D2 step,
``algorithm.loss`` summed and backward; (b) the student's own step,
``algorithm.student.loss`` summed and backward; (c) the teacher's feature
pass, ``algorithm.teacher.extract_feat`` under ``no_grad``; (h) the
amplifier-head passes DS2D2 must run, on the step's own features and RoIs
(:mod:`.floor`). The floor is b + c + h; what DS2D2 adds beyond it is
the amplifier losses' comparisons and the explicit stream, which is also
timed alone on the step's features, built from the same config. For RoI
heads, the step's RoI extractions are timed alone too.
"""
import importlib
import importlib.util
import os.path as osp
import warnings
from contextlib import contextmanager
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch

from .floor import floor_cases, step_records
from .inputs import data_samples, random_boxes
from .stream import build_stream, stream_cases
from .timing import median_time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: each part of the step and of its floor is timed over at least this many
#: calls (a 2-core CPU takes ~28 s per rotated RetinaNet step at 512 px:
#: 30 s of calls gave 1-2 samples and a median 25% off)
STEP_MIN_CALLS = 5
#: name -> (config in configs/, the OpenMMLab package it needs)
DETECTORS = {
    'retinanet': ('ds2d2_retina_r18_r101_dior.py', 'mmdet'),
    'faster-rcnn': ('ds2d2_faster-rcnn_r18_r101_dior.py', 'mmdet'),
    'rotated-retinanet': ('ds2d2_rotated-retina-le90_r18_r101_dior-r.py',
                          'mmrotate'),
}


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence MMEngine's INFO logs (init_weights) and warnings."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        logger.setLevel(level)


def available_detectors(names: Sequence[str]) -> Tuple[List[str], dict]:
    """The detectors that can be built here, and why the others cannot."""
    ok, skipped = [], {}
    for name in names:
        config, package = DETECTORS[name]
        if not osp.isfile(osp.join(REPO, 'configs', config)):
            skipped[name] = f'configs/{config} not found'
        elif importlib.util.find_spec(package) is None:
            skipped[name] = f'{package} is not installed'
        else:
            ok.append(name)
    return ok, skipped


def model_config(name: str):
    """``model`` of a detector's DS2D2 config (a ``ConfigDict``)."""
    from mmengine.config import Config
    return Config.fromfile(
        osp.join(REPO, 'configs', DETECTORS[name][0])).model


def build_algorithm(name: str, quick: bool, seed: int,
                    device: torch.device):
    """``DS2D2Distill`` from the repository's config, random weights.

    Full mode: the configured models (ResNet-18 student, ResNet-101 teacher
    and amplifier, 256-channel FPN, DIOR's 20 classes), ``init_cfg``
    switched off (nothing is downloaded). Quick mode: the same recipe with
    :func:`synthetic.tiny.shrink_distill_model` models (16-channel FPN).

    Returns:
        tuple: ``(algorithm, model config, number of classes)``; the
        algorithm in train mode on ``device``.
    """
    from mmdet.utils import register_all_modules
    from mmrazor.registry import MODELS
    from synthetic.tiny import shrink_distill_model
    importlib.import_module('ds2d2_mmrazor')  # registers its modules
    register_all_modules(init_default_scope=False)
    if DETECTORS[name][1] == 'mmrotate':
        from mmrotate.utils import register_all_modules as register_rotated
        register_rotated(init_default_scope=False)
    cfg = model_config(name)
    student = cfg.architecture
    head = student.roi_head.bbox_head if 'roi_head' in student \
        else student.bbox_head
    num_classes = head.num_classes
    if quick:
        shrink_distill_model(cfg, num_classes, channels=16)
    else:
        detectors = [student, cfg.teacher]
        if cfg.get('amplifier') is not None:
            detectors.append(cfg.amplifier.detector)
        for detector in detectors:
            detector.backbone.init_cfg = None  # nothing to download
    cfg.teacher_ckpt = cfg.amplifier_ckpt = None
    torch.manual_seed(seed)
    algorithm = MODELS.build(cfg)
    algorithm.init_weights()
    return algorithm.to(device).train(), cfg, num_classes


def make_batch(algorithm, size: int, objects: int, num_classes: int,
               rotated: bool, seed: int, device: torch.device) -> dict:
    """Two ``size`` x ``size`` images with DIOR-like objects (sides 8 to
    ``size`` / 4 px, log-uniform), through the model's data preprocessor.

    Returns:
        dict: ``inputs`` ([2, 3, size, size]) and ``data_samples``.
    """
    generator = torch.Generator().manual_seed(seed)
    boxes = [random_boxes(objects, size, rotated, generator, 8,
                          max(size / 4, 9)) for _ in range(2)]
    samples = data_samples(boxes, size, num_classes, generator,
                           padded=False)
    images = [torch.randint(256, (3, size, size), generator=generator,
                            dtype=torch.uint8) for _ in range(2)]
    data = algorithm.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)
    return dict(inputs=data['inputs'].to(device),
                data_samples=[s.to(device) for s in data['data_samples']])


def step_cases(algorithm, data: dict) -> Dict[str, Callable[[], object]]:
    """The timed parts: ``ds2d2_step``, ``student_step`` (each: the loss
    dict summed by ``parse_losses``, then backward) and
    ``teacher_features`` (no grad)."""
    inputs, samples = data['inputs'], data['data_samples']

    def backward(losses: dict) -> None:
        loss, _ = algorithm.parse_losses(losses)
        loss.backward()

    def ds2d2_step() -> None:
        algorithm.zero_grad(set_to_none=True)
        backward(algorithm.loss(inputs, samples))

    def student_step() -> None:
        algorithm.zero_grad(set_to_none=True)
        backward(algorithm.student.loss(inputs, samples))

    def teacher_features() -> tuple:
        with torch.no_grad():
            return algorithm.teacher.extract_feat(inputs)

    return dict(ds2d2_step=ds2d2_step, student_step=student_step,
                teacher_features=teacher_features)


def step_figures(times: Dict[str, Optional[float]]) -> dict:
    """The step's derived figures from its medians.

    Args:
        times (dict): Seconds: ``ds2d2_step`` (a), ``student_step`` (b),
            ``teacher_features`` (c), ``head_passes`` (h),
            ``explicit_stream``, and for RoI heads ``roi_extractions``.

    Returns:
        dict: ``floor_ms`` = b + c + h, ``floor_ratio`` = a / (b + c + h)
        (the target's), ``step_ratio`` = a / (b + c) and ``overhead_ms``
        = a - b - c (reported), ``stream_share`` and ``roi_share`` (None
        without RoI extractions): shares of a.
    """
    step = times['ds2d2_step']
    base = times['student_step'] + times['teacher_features']
    floor = base + times['head_passes']
    roi = times.get('roi_extractions')
    return dict(floor_ms=1e3 * floor, floor_ratio=step / floor,
                step_ratio=step / base, overhead_ms=1e3 * (step - base),
                stream_share=times['explicit_stream'] / step,
                roi_share=None if roi is None else roi / step)


def bench_step(name: str, algorithm, cfg: dict, data: dict,
               min_run_time: float, stream_run_time: float) -> dict:
    """Time one detector's step, its floor, and parts of it alone.

    Args:
        name (str): Detector name (a key of :data:`DETECTORS`).
        algorithm (DS2D2Distill): From :func:`build_algorithm`.
        cfg (dict): Its model config (for the stream's modules).
        data (dict): A batch from :func:`make_batch`.
        min_run_time (float): Seconds of timed calls per part of the step
            and of its floor; at least :data:`STEP_MIN_CALLS` calls' worth
            (a step longer than the budget still gets a median of several
            samples).
        stream_run_time (float): The same for the explicit stream.

    Returns:
        dict: The medians (ms; ``roi_extractions_ms`` None for dense
        heads), :func:`step_figures`, and what the floor covers:
        ``head_passes`` (count), ``extractions`` (RoI extractions per
        step) and ``rois`` (RoIs per extraction).
    """
    cases = step_cases(algorithm, data)
    times = {k: median_time(fn, min_run_time, STEP_MIN_CALLS)
             for k, fn in cases.items()}
    records = step_records(algorithm, data)
    floor, covers = floor_cases(algorithm, records)
    times.update({k: median_time(fn, min_run_time, STEP_MIN_CALLS)
                  for k, fn in floor.items()})
    times.setdefault('roi_extractions', None)
    with torch.no_grad():
        student = algorithm.student.extract_feat(data['inputs'])
    stream = stream_cases(build_stream(cfg.distiller), student,
                          cases['teacher_features'](), data['data_samples'])
    times['explicit_stream'] = median_time(stream['total'],
                                          stream_run_time)
    row = dict(detector=name, input=int(data['inputs'].shape[-1]))
    row.update({f'{k}_ms': None if v is None else 1e3 * v
                for k, v in times.items()})
    row.update(step_figures(times))
    row.update(covers)
    return row
