"""Benchmark of DS2D2's distillation overhead, with the targets it must meet.

    python tools/benchmark.py                  # full mode, by hand (minutes)
    python tools/benchmark.py --quick          # CI: small sizes, seconds
    python tools/benchmark.py --json out.json --device cuda --threads 8
    python tools/benchmark.py --sections disw,stream --detectors retinanet

Every figure is measured in the same run (fixed seeds, warm-up, then the
median of repeats; the parts of a training step are timed round robin, so a
change of machine load hits them alike) and printed as one table per
section, then the targets with their measured ratio and PASS / FAIL:

1. ``disw``: :func:`ds2d2_mmrazor.ops.disw_pyramid` (all levels in one
   call, as the loss builds them) against an explicit
   Python loop over the boxes (:func:`disw_loop`, the authors' release
   builds the map this way), on the five FPN levels (strides 8..128, wavelet
   grid ``ceil(ceil(H / stride) / 2)``) of one image, for horizontal and
   rotated boxes, 10..5000 boxes per image.
2. ``stream``: the explicit stream (1x1 adapter, DWT of student and teacher,
   DISW, both losses, forward and backward), 5 levels x 256 channels,
   batch 2.
3. ``step``: a DS2D2 training step (``DS2D2Distill.loss`` + backward) of the
   repository's configs (RetinaNet, Faster R-CNN, rotated RetinaNet when
   MMRotate is installed; ResNet-18 student, ResNet-101 teachers, 20 DIOR
   classes, random weights) against its unavoidable parts, measured with
   the same modules: the student's own step, the teacher's feature pass,
   the teacher-side head passes (no grad) and the head passes on student
   features (forward + backward). The rest is what this package adds.
4. ``memory``: peak memory of the DS2D2 step and of the student-only step,
   and proof that teacher-only passes keep no autograd graph.

The exit code is 0 whether targets pass or fail (they are printed); it is
non-zero only when the benchmark itself fails.
"""
import argparse
import json
import math
import os.path as osp
import platform
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
from torch import Tensor

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SECTIONS = ('disw', 'stream', 'step', 'memory')
#: FPN strides of the repository's detectors (RetinaNet P3-P7; Faster
#: R-CNN's P2-P6 has the same number of levels).
STRIDES = (8, 16, 32, 64, 128)
#: name -> (config in configs/, the OpenMMLab package it needs)
DETECTORS = {
    'retinanet': ('ds2d2_retina_r18_r101_dior.py', 'mmdet'),
    'faster-rcnn': ('ds2d2_faster-rcnn_r18_r101_dior.py', 'mmdet'),
    'rotated-retinanet': ('ds2d2_rotated-retina-le90_r18_r101_dior-r.py',
                          'mmrotate'),
}
MiB = 2.0**20


def settings(quick: bool) -> dict:
    """Sizes and repeats of the full mode, or of the quick (CI) mode."""
    if quick:
        return dict(disw_sizes=(256, 512), disw_boxes=(10, 100, 1000),
                    disw_repeats=3, loop_repeats=1, stream_size=128,
                    step_size=64, step_objects=30, warmup=1, repeats=2)
    return dict(disw_sizes=(800, 1024), disw_boxes=(10, 100, 1000, 5000),
                disw_repeats=9, loop_repeats=3, stream_size=800,
                step_size=512, step_objects=30, warmup=1, repeats=3)


# ----------------------------------------------------------------------------
# measuring


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_times(cases: Dict[str, Callable[[], object]], warmup: int,
                 repeats: int, device: torch.device) -> Dict[str, float]:
    """Median wall time (s) of each case after ``warmup`` calls.

    The cases run round robin (one call of each per repeat), so that a
    change of load during the run affects all of them alike.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _tensors(obj) -> Iterator[Tensor]:
    """The tensors in nested tuples / lists / dicts."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def tensor_bytes(obj) -> int:
    """Bytes of the distinct storages of the tensors in ``obj``."""
    storages = {}
    for t in _tensors(obj):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence C++ warnings written to the stderr file descriptor."""
    import os
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_allocations(fn: Callable[[], object]) -> Tuple[list, object]:
    """``fn()`` and the CPU allocation events (time, +/- bytes) it caused.

    The profiler records memory events only: its activity is set to a
    device this process does not use, so no operator events are kept
    (those can be millions: e.g. mmcv's rotated IoU on the CPU indexes
    tensors box by box, and a profiled rotated RetinaNet step at 512 px
    then needs more than 20 GB). Falls back to ``torch.profiler`` with CPU
    operator events where that private API is missing.
    """
    try:
        from torch._C._profiler import (ProfilerActivity, ProfilerConfig,
                                        ProfilerState, _ExperimentalConfig)
        config = ProfilerConfig(ProfilerState.KINETO, False, True, False,
                                False, False, _ExperimentalConfig())
        activities = {ProfilerActivity.PrivateUse1}
        torch.autograd._prepare_profiler(config, activities)
        torch.autograd._enable_profiler(config, activities)
    except (ImportError, AttributeError, RuntimeError, TypeError):
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU],
                     profile_memory=True) as prof:
            out = fn()
        result = prof.profiler.kineto_results
    else:
        try:
            out = fn()
        finally:
            # it warns that it found no operator events to match
            with _stderr_silenced():
                result = torch.autograd._disable_profiler()
    cpu = torch.autograd.DeviceType.CPU
    events = sorted((e.start_ns(), e.nbytes()) for e in result.events()
                    if e.name() == '[memory]' and e.device_type() == cpu)
    return events, out


def memory_use(fn: Callable[[], object],
               device: torch.device) -> Tuple[int, int, object]:
    """Peak and still-held bytes allocated while ``fn`` runs.

    Both are counted from the start of the call (memory allocated before is
    not included). CUDA: the allocator's statistics. CPU: the running sum of
    the allocation and free events the profiler records with
    ``profile_memory=True``.

    Returns:
        tuple: ``(peak, held, fn())``; ``held`` includes what the result
        keeps alive.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base,
                torch.cuda.memory_allocated(device) - base, out)
    events, out = _cpu_allocations(fn)
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak, running, out


# ----------------------------------------------------------------------------
# 1. DISW: the package's function and the per-box reference loop


def disw_loop(boxes: Sequence[Tensor], grid_hw: Tuple[int, int],
              input_hw: Tuple[float, float]) -> Tensor:
    """DISW map built box by box, as the authors' release builds it.

    The reference of the benchmark (float64 instead of the release's
    float16, so that it can be compared with :func:`disw_weights` exactly):
    one Python iteration per box, which adds ``1 / A`` to the cells it
    covers.

    - horizontal ``(x1, y1, x2, y2)``: the cell rectangle rows
      ``floor(y1 h / H) .. ceil(y2 h / H)``, columns likewise, clipped;
    - rotated ``(cx, cy, w, h, theta)``: the cells whose centres lie in the
      rotated rectangle (tested on the cell centres of the box's bounding
      range, vectorised within the box), or the cell holding the box centre
      when there are none.

    Args:
        boxes (Sequence[Tensor]): Per image, [K, 4] or [K, 5] boxes.
        grid_hw (tuple[int, int]): Wavelet grid (h, w).
        input_hw (tuple[float, float]): Padded input size (H, W).

    Returns:
        Tensor: [N, 1, h, w] float32 map, on the boxes' device.
    """
    h, w = grid_hw
    device = boxes[0].device if len(boxes) else torch.device('cpu')
    out = torch.zeros(len(boxes), 1, h, w, dtype=torch.float64,
                      device=device)
    for n, image_boxes in enumerate(boxes):
        add = _loop_rotated if image_boxes.shape[1] == 5 else \
            _loop_horizontal
        add(out[n, 0], image_boxes.tolist(), grid_hw, input_hw)
    return (1 + out).float()


def _loop_horizontal(plane: Tensor, boxes: List[List[float]],
                     grid_hw: Tuple[int, int],
                     input_hw: Tuple[float, float]) -> None:
    (h, w), (in_h, in_w) = grid_hw, input_hw
    for x1, y1, x2, y2 in boxes:
        r0 = max(math.floor(y1 * h / in_h), 0)
        r1 = min(math.ceil(y2 * h / in_h), h - 1)
        c0 = max(math.floor(x1 * w / in_w), 0)
        c1 = min(math.ceil(x2 * w / in_w), w - 1)
        if r0 <= r1 and c0 <= c1:
            plane[r0:r1 + 1, c0:c1 + 1] += 1 / ((r1 - r0 + 1) *
                                                (c1 - c0 + 1))


def _loop_rotated(plane: Tensor, boxes: List[List[float]],
                  grid_hw: Tuple[int, int],
                  input_hw: Tuple[float, float]) -> None:
    (h, w), (in_h, in_w) = grid_hw, input_hw
    kw = dict(dtype=torch.float64, device=plane.device)
    for cx, cy, bw, bh, theta in boxes:
        cos, sin = math.cos(theta), math.sin(theta)
        ext_x = abs(bw * cos) / 2 + abs(bh * sin) / 2
        ext_y = abs(bw * sin) / 2 + abs(bh * cos) / 2
        # the bounding range, one cell wider on each side (the centre test
        # below decides)
        r0 = max(math.floor((cy - ext_y) * h / in_h) - 1, 0)
        r1 = min(math.ceil((cy + ext_y) * h / in_h) + 1, h - 1)
        c0 = max(math.floor((cx - ext_x) * w / in_w) - 1, 0)
        c1 = min(math.ceil((cx + ext_x) * w / in_w) + 1, w - 1)
        area = 0
        if r0 <= r1 and c0 <= c1:
            dy = (torch.arange(r0, r1 + 1, **kw) + 0.5) * (in_h / h) - cy
            dx = (torch.arange(c0, c1 + 1, **kw) + 0.5) * (in_w / w) - cx
            u = dx[None] * cos + dy[:, None] * sin
            v = dy[:, None] * cos - dx[None] * sin
            inside = (u.abs() <= bw / 2) & (v.abs() <= bh / 2)
            area = int(inside.sum())
        if area:
            plane[r0:r1 + 1, c0:c1 + 1] += inside / area
        else:
            row = math.floor(cy * h / in_h)
            col = math.floor(cx * w / in_w)
            if 0 <= row < h and 0 <= col < w:
                plane[row, col] += 1


def grid_sizes(size: int) -> List[Tuple[int, int]]:
    """Haar wavelet grid of each FPN level of a square padded input."""
    return [(math.ceil(math.ceil(size / s) / 2), ) * 2 for s in STRIDES]


def random_boxes(num: int, size: int, rotated: bool,
                 generator: torch.Generator, min_side: float = 4,
                 max_side: float = 64) -> Tensor:
    """Boxes with log-uniform sides and uniform centres in a square image;
    rotated ones with angles uniform in [-pi/2, pi/2) (le90)."""
    log_side = torch.empty(num, 2, dtype=torch.float64).uniform_(
        math.log(min_side), math.log(max_side), generator=generator)
    side = log_side.exp()
    centre = torch.rand(num, 2, generator=generator,
                        dtype=torch.float64) * size
    if rotated:
        theta = (torch.rand(num, 1, generator=generator,
                            dtype=torch.float64) - 0.5) * math.pi
        boxes = torch.cat([centre, side, theta], dim=1)
    else:
        boxes = torch.cat([centre - side / 2, centre + side / 2],
                          dim=1).clamp(0, size)
    return boxes.float()


def bench_disw(opts: dict, device: torch.device) -> Dict[str, list]:
    """Section 1: DISW, package vs per-box loop, and their scaling."""
    from ds2d2_mmrazor.ops import disw_pyramid
    generator = torch.Generator().manual_seed(opts['seed'])
    rows = []
    for size in opts['disw_sizes']:
        grids = grid_sizes(size)
        cells = sum(h * w for h, w in grids)
        for box_type in ('horizontal', 'rotated'):
            for num in opts['disw_boxes']:
                boxes = [random_boxes(num, size, box_type == 'rotated',
                                      generator).to(device)]
                hw = (size, size)

                def package(boxes=boxes, hw=hw, grids=grids):
                    return disw_pyramid(boxes, grids, hw)

                def loop(boxes=boxes, hw=hw, grids=grids):
                    return [disw_loop(boxes, g, hw) for g in grids]

                # honesty check: both compute the same maps
                for a, b in zip(package(), loop()):
                    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
                t_pkg = median_times(dict(p=package), opts['warmup'],
                                     opts['disw_repeats'], device)['p']
                t_loop = median_times(dict(p=loop), opts['warmup'],
                                      opts['loop_repeats'], device)['p']
                rows.append(dict(
                    input=size, box_type=box_type, boxes=num, cells=cells,
                    package_ms=1e3 * t_pkg, loop_ms=1e3 * t_loop,
                    package_ns_per_box_cell=1e9 * t_pkg / (num + cells),
                    loop_us_per_box=1e6 * t_loop / num,
                    speedup=t_loop / t_pkg))
    scaling = []
    for size in opts['disw_sizes']:
        for box_type in ('horizontal', 'rotated'):
            sel = [r for r in rows
                   if r['input'] == size and r['box_type'] == box_type]
            small, large = sel[-2], sel[-1]
            log_boxes = math.log(large['boxes'] / small['boxes'])
            scaling.append(dict(
                input=size, box_type=box_type,
                boxes=f"{small['boxes']}->{large['boxes']}",
                package_slope=math.log(
                    large['package_ms'] / small['package_ms']) / log_boxes,
                loop_slope=math.log(
                    large['loop_ms'] / small['loop_ms']) / log_boxes))
    return dict(disw=rows, disw_scaling=scaling)


# ----------------------------------------------------------------------------
# 2. the explicit stream


def _feature_shapes(size: int, batch: int,
                    channels: int) -> List[Tuple[int, ...]]:
    return [(batch, channels, math.ceil(size / s), math.ceil(size / s))
            for s in STRIDES]


def _data_samples(boxes: Sequence[Tensor], size: int, num_classes: int,
                  generator: torch.Generator, padded: bool = True) -> list:
    """DetDataSamples of square ``size`` images with the given boxes (and,
    if ``padded``, the metainfo the data preprocessor adds)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData
    samples = []
    for i, b in enumerate(boxes):
        if b.shape[1] == 5:
            from mmrotate.structures.bbox import RotatedBoxes
            b = RotatedBoxes(b)
        else:
            b = HorizontalBoxes(b)
        meta = dict(img_id=i, img_shape=(size, size), ori_shape=(size, size),
                    scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
        if padded:
            meta.update(pad_shape=(size, size),
                        batch_input_shape=(size, size))
        sample = DetDataSample(metainfo=meta)
        sample.gt_instances = InstanceData(
            bboxes=b, labels=torch.randint(num_classes, (len(b), ),
                                           generator=generator))
        samples.append(sample)
    return samples


def stream_case(size: int, channels: int, batch: int, objects: int,
                generator: torch.Generator,
                device: torch.device) -> Dict[str, Callable[[], None]]:
    """Forward, and forward + backward, of the explicit stream built from
    the modules of the configs (``WaveletConnector`` adapter + DWT on the
    student, DWT on the teacher, ``DISWSpectralLoss``)."""
    from mmrazor.registry import MODELS
    student_bands = MODELS.build(dict(
        type='WaveletConnector', _scope_='mmrazor', in_channels=channels,
        out_channels=channels, wavelet='haar')).to(device)
    teacher_bands = MODELS.build(dict(
        type='WaveletConnector', _scope_='mmrazor', wavelet='haar'))
    loss = MODELS.build(dict(type='DISWSpectralLoss', _scope_='mmrazor'))
    shapes = _feature_shapes(size, batch, channels)
    s_feats = [torch.randn(s, generator=generator).to(device)
               .requires_grad_() for s in shapes]
    t_feats = [torch.randn(s, generator=generator).to(device)
               for s in shapes]
    boxes = [random_boxes(objects, size, False, generator, 8, size / 4)
             for _ in range(batch)]
    samples = _data_samples([b.to(device) for b in boxes], size, 20,
                            generator)

    def forward():
        return loss(student_bands(s_feats), teacher_bands(t_feats),
                    data_samples=samples)

    def forward_backward():
        for f in s_feats:
            f.grad = None
        student_bands.zero_grad(set_to_none=True)
        sum(forward().values()).backward()

    return dict(forward=forward, total=forward_backward)


def bench_stream(opts: dict, device: torch.device) -> Dict[str, list]:
    """Section 2: the explicit stream, 5 levels x 256 channels, batch 2."""
    generator = torch.Generator().manual_seed(opts['seed'])
    size = opts['stream_size']
    cases = stream_case(size, 256, 2, 30, generator, device)
    times = median_times(cases, opts['warmup'], opts['repeats'] + 2, device)
    return dict(stream=[dict(
        input=size, levels=len(STRIDES), channels=256, batch=2,
        forward_ms=1e3 * times['forward'],
        backward_ms=1e3 * (times['total'] - times['forward']),
        total_ms=1e3 * times['total'])])


# ----------------------------------------------------------------------------
# 3. and 4. the DS2D2 training step, its unavoidable parts, its memory


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence MMEngine's INFO logs (init_weights) and known warnings."""
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
    """The detectors that can be built here, and why others cannot."""
    import importlib.util
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


def build_algorithm(name: str, quick: bool, seed: int,
                    device: torch.device):
    """``DS2D2Distill`` from the repository's config, random weights.

    Full mode: the configured models (ResNet-18 student, ResNet-101 teacher
    and amplifier, 256-channel FPN, DIOR's 20 classes) without ImageNet
    weights. Quick mode: the same recipe with
    :func:`synthetic.tiny.shrink_detector` sized models.
    """
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmrazor.registry import MODELS

    from synthetic.tiny import shrink_detector
    config, package = DETECTORS[name]
    register_all_modules(init_default_scope=False)
    if package == 'mmrotate':
        from mmrotate.utils import register_all_modules as register_rotated
        register_rotated(init_default_scope=False)
    cfg = Config.fromfile(osp.join(REPO, 'configs', config)).model
    detectors = [cfg.architecture, cfg.teacher]
    if cfg.get('amplifier') is not None:
        detectors.append(cfg.amplifier.detector)
    student = cfg.architecture
    head = student.roi_head.bbox_head if 'roi_head' in student \
        else student.bbox_head
    num_classes = head.num_classes
    for detector in detectors:
        if quick:
            width = 16 if detector.backbone.depth > 18 else 8
            shrink_detector(detector, num_classes, channels=16,
                            base_channels=width)
        else:
            detector.backbone.init_cfg = None  # nothing to download
    if quick:
        for connector in cfg.distiller.connectors.values():
            for key in ('in_channels', 'out_channels'):
                if connector.get(key) is not None:
                    connector[key] = 16
    cfg.teacher_ckpt = cfg.amplifier_ckpt = None
    torch.manual_seed(seed)
    algorithm = MODELS.build(cfg)
    algorithm.init_weights()
    algorithm.to(device)
    algorithm.train()
    return algorithm, num_classes


def make_batch(algorithm, size: int, objects: int, num_classes: int,
               rotated: bool, generator: torch.Generator) -> dict:
    """Two ``size`` x ``size`` images with DIOR-like objects (sides 8 to
    size / 4 px, log-uniform), through the model's data preprocessor."""
    boxes = [random_boxes(objects, size, rotated, generator, 8,
                          max(size / 4, 9)) for _ in range(2)]
    samples = _data_samples(boxes, size, num_classes, generator,
                            padded=False)
    images = [torch.randint(256, (3, size, size), generator=generator,
                            dtype=torch.uint8) for _ in range(2)]
    return algorithm.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)


def _amplifier_losses(algorithm) -> List[Tuple[str, torch.nn.Module]]:
    return [(name, loss) for name, loss in
            algorithm.distiller.distill_losses.items() if hasattr(loss,
                                                                  'bind')]


def _spectral_loss(algorithm) -> Tuple[str, torch.nn.Module]:
    from ds2d2_mmrazor.models.losses import DISWSpectralLoss
    for name, loss in algorithm.distiller.distill_losses.items():
        if isinstance(loss, DISWSpectralLoss):
            return name, loss
    raise ValueError('the config has no DISWSpectralLoss')


def _recorded_kwargs(algorithm, loss_name: str) -> dict:
    """The inputs of a distill loss, from the last step's recorders."""
    distiller = algorithm.distiller
    return {key: distiller.get_record(**record) for key, record in
            distiller.loss_forward_mappings[loss_name].items()}


def _head_pass(loss, feats: Sequence[Tensor],
               rois: Optional[Tensor]) -> List[Tensor]:
    """The bound head of an amplifier loss on (transformed) features."""
    head = loss._head
    if rois is None:
        cls_scores, bbox_preds = head(tuple(feats))
        return list(cls_scores) + list(bbox_preds)
    out = head._bbox_forward(tuple(feats), rois)
    return [out['cls_score'], out['bbox_pred']]


def _head_modules(algorithm) -> List[torch.nn.Module]:
    """The modules that run teacher-side passes in a DS2D2 step."""
    teacher = algorithm.teacher
    modules = [m for m in (teacher.backbone, getattr(teacher, 'neck', None))
               if m is not None]
    for _, loss in _amplifier_losses(algorithm):
        head = loss._head
        if hasattr(head, 'bbox_roi_extractor'):
            modules += [head.bbox_roi_extractor, head.bbox_head]
        else:
            modules.append(head)
    return modules


class StepParts:
    """A DS2D2 step and its parts, on one batch, as callables.

    Everything is built once from one DS2D2 step (which fills the
    recorders): the teacher's features, their high-frequency view, the
    student's features (as leaves that require grad), the student's sampled
    RoIs (two-stage detectors). Feature transforms (the high-frequency view
    fed to the amplifier head) are computed here, outside the timed head
    passes, so their cost counts as overhead of the package.
    """

    def __init__(self, algorithm, data: dict) -> None:
        from mmdet.structures.bbox import bbox2roi, get_box_tensor
        self.algorithm = algorithm
        self.inputs = data['inputs']
        self.samples = data['data_samples']
        self.ds2d2_step()  # fills the recorders
        self.amplifiers = _amplifier_losses(algorithm)
        with torch.no_grad():
            t_feats = algorithm.teacher.extract_feat(self.inputs)
            s_feats = algorithm.student.extract_feat(self.inputs)
        self.t_feats = t_feats
        self.s_feats = [f.detach().requires_grad_() for f in s_feats]
        self.rois = None
        first = self.amplifiers[0][0]
        kwargs = _recorded_kwargs(algorithm, first)
        if 'sampling_results' in kwargs:
            self.rois = bbox2roi([get_box_tensor(r.priors).detach()
                                  for r in kwargs['sampling_results']])
        # per amplifier: its (transformed) teacher and student features
        self.t_inputs, self.s_inputs = [], []
        for _, loss in self.amplifiers:
            transform = loss._transform
            with torch.no_grad():
                self.t_inputs.append(tuple(transform(tuple(t_feats))))
                self.s_inputs.append([
                    f.detach().requires_grad_()
                    for f in transform(tuple(s_feats))])

    def ds2d2_step(self) -> None:
        """``DS2D2Distill.loss``, summed, and backward."""
        algorithm = self.algorithm
        algorithm.zero_grad(set_to_none=True)
        loss, _ = algorithm.parse_losses(
            algorithm.loss(self.inputs, self.samples))
        loss.backward()

    def student_step(self) -> None:
        """The student's own training step: its loss, summed, backward."""
        algorithm = self.algorithm
        algorithm.zero_grad(set_to_none=True)
        loss, _ = algorithm.parse_losses(
            algorithm.student.loss(self.inputs, self.samples))
        loss.backward()

    def teacher_features(self):
        with torch.no_grad():
            return self.algorithm.teacher.extract_feat(self.inputs)

    def teacher_heads(self) -> list:
        """The teacher-side passes of both amplifier heads (no grad)."""
        with torch.no_grad():
            return [_head_pass(loss, feats, self.rois) for (_, loss), feats
                    in zip(self.amplifiers, self.t_inputs)]

    def student_heads(self) -> None:
        """Both amplifier heads on student features, forward + backward."""
        total = 0
        for (_, loss), feats in zip(self.amplifiers, self.s_inputs):
            for f in feats:
                f.grad = None
            total = total + sum(out.float().sum() for out in
                                _head_pass(loss, feats, self.rois))
        total.backward()

    def explicit_stream(self) -> None:
        """The explicit stream on this step's features: the connectors,
        DISW and both losses, forward + backward."""
        algorithm = self.algorithm
        name, loss = _spectral_loss(algorithm)
        mappings = algorithm.distiller.loss_forward_mappings[name]
        connectors = algorithm.distiller.connectors
        student_bands = connectors[mappings['student']['connector']]
        teacher_bands = connectors[mappings['teacher']['connector']]
        for f in self.s_feats:
            f.grad = None
        student_bands.zero_grad(set_to_none=True)
        terms = loss(student_bands(self.s_feats),
                     teacher_bands(self.t_feats), data_samples=self.samples)
        sum(terms.values()).backward()

    def amplifier_losses(self) -> None:
        """Both amplifier losses as the distiller calls them (heads,
        anchors, decoding, KD losses), forward + backward, on this step's
        recorded inputs with the student features as leaves."""
        total = 0
        for name, loss in self.amplifiers:
            kwargs = _recorded_kwargs(self.algorithm, name)
            kwargs['student_feats'] = self.s_feats
            total = total + loss(**kwargs)
        for f in self.s_feats:
            f.grad = None
        total.backward()


@contextmanager
def count_calls(objects: Sequence[object], method: str) -> Iterator[list]:
    """Count the calls of ``method`` on each object (instance patch)."""
    counter = [0]
    patched = []
    for obj in {id(o): o for o in objects}.values():
        original = getattr(obj, method)

        def wrapper(*args, _original=original, **kwargs):
            counter[0] += 1
            return _original(*args, **kwargs)

        setattr(obj, method, wrapper)
        patched.append(obj)
    try:
        yield counter
    finally:
        for obj in patched:
            delattr(obj, method)


def _assigners(module: torch.nn.Module) -> List[object]:
    found = []
    for m in module.modules():
        for attr in ('assigner', 'bbox_assigner'):
            if getattr(m, attr, None) is not None:
                found.append(getattr(m, attr))
    return found


def _prior_generators(module: torch.nn.Module) -> List[object]:
    return [m.prior_generator for m in module.modules()
            if getattr(m, 'prior_generator', None) is not None]


@contextmanager
def count_syncs(device: torch.device) -> Iterator[list]:
    """Record CUDA host-device synchronisations (an empty list on CPU)."""
    if device.type != 'cuda':
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode('default')


def work_counts(parts: StepParts,
                device: torch.device) -> Dict[str, Optional[int]]:
    """Target assignments, anchor generations and (CUDA) host-device
    synchronisations per step, student-only and DS2D2."""
    algorithm = parts.algorithm
    counts: Dict[str, Optional[int]] = {}
    for label, step in (('student', parts.student_step),
                        ('ds2d2', parts.ds2d2_step)):
        with count_calls(_assigners(algorithm), 'assign') as assign, \
                count_calls(_prior_generators(algorithm),
                            'grid_priors') as priors, \
                count_syncs(device) as syncs:
            step()
        counts[f'{label}_assign_calls'] = assign[0]
        counts[f'{label}_anchor_generations'] = priors[0]
        counts[f'{label}_syncs'] = sum(
            'synchroniz' in str(w.message) for w in syncs) \
            if device.type == 'cuda' else None
    return counts


def anchor_generation_ms(parts: StepParts, device: torch.device,
                         repeats: int) -> float:
    """Time of one anchor generation for this batch's FPN levels, as the
    dense amplifier loss does it (the head's prior generator, then one copy
    per image), 0 for heads without anchors."""
    from mmdet.structures.bbox import cat_boxes
    _, loss = parts.amplifiers[0]
    head = loss._head
    if not hasattr(head, 'prior_generator'):
        return 0.0
    sizes = [f.shape[-2:] for f in parts.s_feats]
    num_images = parts.s_feats[0].shape[0]

    def generate():
        anchors = cat_boxes(head.prior_generator.grid_priors(
            sizes, device=device))
        return cat_boxes([anchors] * num_images)

    return 1e3 * median_times(dict(a=generate), 1, repeats, device)['a']


def bench_step(name: str, parts: StepParts, opts: dict,
               device: torch.device) -> dict:
    """Section 3 for one detector."""
    cases = dict(
        ds2d2_step=parts.ds2d2_step, student_step=parts.student_step,
        teacher_features=parts.teacher_features,
        teacher_heads=parts.teacher_heads,
        student_heads=parts.student_heads,
        explicit_stream=parts.explicit_stream,
        amplifier_losses=parts.amplifier_losses)
    times = median_times(cases, opts['warmup'], opts['repeats'], device)
    unavoidable = sum(times[k] for k in ('student_step', 'teacher_features',
                                         'teacher_heads', 'student_heads'))
    row = dict(detector=name, input=opts['step_size'])
    row.update({f'{k}_ms': 1e3 * v for k, v in times.items()})
    row.update(
        unavoidable_ms=1e3 * unavoidable,
        overhead_ms=1e3 * (times['ds2d2_step'] - unavoidable),
        step_ratio=times['ds2d2_step'] / unavoidable,
        stream_share=times['explicit_stream'] / times['ds2d2_step'],
        anchor_generation_ms=anchor_generation_ms(parts, device,
                                                  opts['repeats'] + 2))
    row.update(work_counts(parts, device))
    return row


class TeacherOnlyWatch:
    """Bytes autograd saves while a teacher-only module call runs.

    Forward hooks on the modules that run teacher-side passes (the
    teacher's backbone and neck, the amplifier heads) mark the calls whose
    inputs do not require grad (teacher features, not student ones);
    ``saved_tensors_hooks`` counts the bytes of tensors packed for backward
    during those calls. A pass that keeps no graph saves none.
    """

    def __init__(self, modules: Sequence[torch.nn.Module]) -> None:
        self.modules = modules
        self.saved_bytes = 0
        self.calls = self.grad_enabled_calls = 0
        self._stack: List[bool] = []
        self._storages: set = set()

    def _enter(self, module, args) -> None:
        teacher_only = not any(t.requires_grad for t in _tensors(args))
        self._stack.append(teacher_only)
        if teacher_only:
            self.calls += 1
            self.grad_enabled_calls += torch.is_grad_enabled()

    def _exit(self, module, args, output) -> None:
        self._stack.pop()

    def _pack(self, tensor: Tensor) -> Tensor:
        if any(self._stack):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in self._storages:
                self._storages.add(storage.data_ptr())
                self.saved_bytes += storage.nbytes()
        return tensor

    @contextmanager
    def watching(self) -> Iterator['TeacherOnlyWatch']:
        handles = []
        for m in self.modules:
            handles.append(m.register_forward_pre_hook(self._enter))
            handles.append(m.register_forward_hook(self._exit))
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack,
                                                          lambda t: t):
                yield self
        finally:
            for handle in handles:
                handle.remove()


def held_beyond_output(fn: Callable[[], object],
                       device: torch.device) -> Tuple[int, int]:
    """Bytes a call leaves allocated beyond its output, and the output's."""
    _, held, out = memory_use(fn, device)
    size = tensor_bytes(out)
    del out
    return held - size, size


def bench_memory(name: str, parts: StepParts,
                 device: torch.device) -> dict:
    """Section 4 for one detector."""
    algorithm = parts.algorithm
    row = dict(detector=name)
    distiller = algorithm.distiller
    for label, step in (('student', parts.student_step),
                        ('ds2d2', parts.ds2d2_step)):
        step()  # warm
        # free what the last step left (gradients, recorded features), so
        # that every free during the measured step is of its own memory
        algorithm.zero_grad(set_to_none=True)
        for manager in (distiller.student_recorders,
                        distiller.teacher_recorders):
            for recorder in manager.recorders.values():
                recorder.reset_data_buffer()
        peak, _, _ = memory_use(step, device)
        row[f'{label}_peak_mb'] = peak / MiB
    algorithm.zero_grad(set_to_none=True)
    row['peak_ratio'] = row['ds2d2_peak_mb'] / row['student_peak_mb']

    # teacher-only passes as DS2D2 runs them, and the same with grad: the
    # measurement sees a graph when there is one
    teacher = algorithm.teacher
    extra, _ = held_beyond_output(parts.teacher_features, device)
    teacher.requires_grad_(True)
    try:
        with torch.enable_grad():
            extra_grad, _ = held_beyond_output(
                lambda: teacher.extract_feat(parts.inputs), device)
    finally:
        teacher.requires_grad_(False)
    heads, _ = held_beyond_output(parts.teacher_heads, device)
    leaves = [[f.detach().requires_grad_() for f in feats]
              for feats in parts.t_inputs]

    def heads_with_graph():
        return [_head_pass(loss, feats, parts.rois) for (_, loss), feats
                in zip(parts.amplifiers, leaves)]

    heads_grad, _ = held_beyond_output(heads_with_graph, device)
    watch = TeacherOnlyWatch(_head_modules(algorithm))
    with watch.watching():
        parts.ds2d2_step()
    algorithm.zero_grad(set_to_none=True)
    row.update(
        teacher_features_held_mb=extra / MiB,
        teacher_features_held_grad_mb=extra_grad / MiB,
        teacher_heads_held_mb=heads / MiB,
        teacher_heads_held_grad_mb=heads_grad / MiB,
        held_ratio=(max(extra, 0) + max(heads, 0)) /
        max(extra_grad + heads_grad, 1),
        step_teacher_only_calls=watch.calls,
        step_teacher_only_grad_calls=watch.grad_enabled_calls,
        step_teacher_only_saved_mb=watch.saved_bytes / MiB)
    return row


def bench_detectors(opts: dict, sections: Sequence[str],
                    device: torch.device) -> Dict[str, list]:
    """Sections 3 and 4: build each detector once, then measure."""
    import gc
    names, skipped = available_detectors(opts['detectors'])
    results = dict(step=[], memory=[], skipped=[
        dict(detector=n, reason=r) for n, r in skipped.items()])
    for name in names:
        with quiet_logs():
            algorithm, num_classes = build_algorithm(
                name, opts['quick'], opts['seed'], device)
            generator = torch.Generator().manual_seed(opts['seed'])
            data = make_batch(algorithm, opts['step_size'],
                              opts['step_objects'], num_classes,
                              name.startswith('rotated'), generator)
            data = dict(inputs=data['inputs'].to(device),
                        data_samples=[s.to(device)
                                      for s in data['data_samples']])
            parts = StepParts(algorithm, data)
            if 'step' in sections:
                results['step'].append(bench_step(name, parts, opts,
                                                  device))
            if 'memory' in sections:
                results['memory'].append(bench_memory(name, parts, device))
        del algorithm, parts, data
        gc.collect()
    return results


# ----------------------------------------------------------------------------
# targets and report


def targets(results: dict) -> List[dict]:
    """Each target with its measured value and PASS / FAIL."""
    rows = []

    def add(target: str, measured: float, limit: str, ok: bool) -> None:
        rows.append(dict(target=target, measured=measured, limit=limit,
                         result='PASS' if ok else 'FAIL'))

    disw = results.get('disw', [])
    if disw:
        count = max(n for n in {r['boxes'] for r in disw} if n <= 1000)
        worst = min(r['speedup'] for r in disw if r['boxes'] == count)
        add(f'DISW speed-up over the per-box loop at {count} boxes/image '
            '(worst input / box type)', worst, '>= 50', worst >= 50)
        slope = max(r['package_slope'] for r in results['disw_scaling'])
        add('DISW time vs box count: log-log slope over the two largest '
            'counts (worst; linear = 1)', slope, '<= 1.1', slope <= 1.1)
    for row in results.get('step', []):
        name = row['detector']
        add(f'{name}: explicit stream / DS2D2 step', row['stream_share'],
            '<= 0.05', row['stream_share'] <= 0.05)
        add(f'{name}: DS2D2 step / sum of its unavoidable parts',
            row['step_ratio'], '<= 1.10', row['step_ratio'] <= 1.10)
    for row in results.get('memory', []):
        ok = row['held_ratio'] <= 0.01 and \
            row['step_teacher_only_saved_mb'] == 0 and \
            row['step_teacher_only_calls'] > 0
        add(f"{row['detector']}: teacher-only passes hold no graph "
            '(held / held with grad; 0 MB saved in the step)',
            row['held_ratio'], '<= 0.01', ok)
    return rows


COLUMNS = {
    'disw': [('input', 'input', '{}'), ('boxes', 'box_type', '{}'),
             ('per image', 'boxes', '{}'), ('cells', 'cells', '{}'),
             ('package ms', 'package_ms', '{:.3f}'),
             ('ns/(box+cell)', 'package_ns_per_box_cell', '{:.1f}'),
             ('loop ms', 'loop_ms', '{:.1f}'),
             ('loop us/box', 'loop_us_per_box', '{:.1f}'),
             ('speed-up', 'speedup', '{:.1f}x')],
    'disw_scaling': [('input', 'input', '{}'), ('boxes', 'box_type', '{}'),
                     ('counts', 'boxes', '{}'),
                     ('package slope', 'package_slope', '{:.2f}'),
                     ('loop slope', 'loop_slope', '{:.2f}')],
    'stream': [('input', 'input', '{}'), ('levels', 'levels', '{}'),
               ('channels', 'channels', '{}'), ('batch', 'batch', '{}'),
               ('forward ms', 'forward_ms', '{:.1f}'),
               ('backward ms', 'backward_ms', '{:.1f}'),
               ('total ms', 'total_ms', '{:.1f}')],
    'step': [('detector', 'detector', '{}'),
             ('DS2D2 step', 'ds2d2_step_ms', '{:.0f}'),
             ('student step', 'student_step_ms', '{:.0f}'),
             ('teacher feats', 'teacher_features_ms', '{:.0f}'),
             ('teacher heads', 'teacher_heads_ms', '{:.0f}'),
             ('student heads', 'student_heads_ms', '{:.0f}'),
             ('unavoidable', 'unavoidable_ms', '{:.0f}'),
             ('overhead', 'overhead_ms', '{:.0f}'),
             ('ratio', 'step_ratio', '{:.3f}')],
    'step_detail': [('detector', 'detector', '{}'),
                    ('explicit stream', 'explicit_stream_ms', '{:.1f}'),
                    ('amplifier losses', 'amplifier_losses_ms', '{:.0f}'),
                    ('1 anchor gen.', 'anchor_generation_ms', '{:.2f}'),
                    ('assign student/DS2D2', 'assign', '{}'),
                    ('anchor gens student/DS2D2', 'anchors', '{}'),
                    ('host syncs student/DS2D2', 'syncs', '{}')],
    'memory': [('detector', 'detector', '{}'),
               ('student peak MB', 'student_peak_mb', '{:.0f}'),
               ('DS2D2 peak MB', 'ds2d2_peak_mb', '{:.0f}'),
               ('ratio', 'peak_ratio', '{:.2f}')],
    'memory_graph': [
        ('detector', 'detector', '{}'),
        ('teacher feats held MB', 'teacher_features_held_mb', '{:.1f}'),
        ('(with grad)', 'teacher_features_held_grad_mb', '{:.1f}'),
        ('teacher heads held MB', 'teacher_heads_held_mb', '{:.1f}'),
        ('(with grad)', 'teacher_heads_held_grad_mb', '{:.1f}'),
        ('in-step saved MB', 'step_teacher_only_saved_mb', '{:.1f}'),
        ('calls (grad on)', 'calls', '{}')],
    'targets': [('target', 'target', '{}'), ('measured', 'measured',
                                             '{:.3f}'),
                ('limit', 'limit', '{}'), ('result', 'result', '{}')],
}
TITLES = {
    'disw': '1. DISW on 5 FPN levels of one image: package vs per-box loop',
    'disw_scaling': 'DISW scaling: log-log slope of time vs box count',
    'stream': '2. Explicit stream (adapter + DWT + DISW + both losses)',
    'step': '3. Training step, ms (median): DS2D2 vs its unavoidable parts',
    'step_detail': 'What the package adds, measured on the same step',
    'memory': '4. Peak memory allocated during a step',
    'memory_graph': 'Teacher-only passes: memory held beyond their outputs',
    'targets': 'Targets',
}


def table(rows: Sequence[dict], columns: Sequence[Tuple[str, str, str]]
          ) -> str:
    """Rows as an aligned text table (text left-, numbers right-aligned)."""
    cells = [[fmt.format(row[key]) for _, key, fmt in columns]
             for row in rows]
    widths = [max(len(head), *(len(c[i]) for c in cells))
              for i, (head, _, _) in enumerate(columns)]
    numeric = [all(isinstance(row[key], (int, float)) for row in rows)
               for _, key, _ in columns]

    def line(values):
        return '  '.join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths,
                                              numeric)).rstrip()

    return '\n'.join([line([h for h, _, _ in columns]),
                      line(['-' * w for w in widths])] +
                     [line(c) for c in cells])


def report(results: dict) -> str:
    """The printed report: the run's settings, one table per section, the
    targets."""
    meta = results['meta']
    out = [f"DS2D2 benchmark ({meta['mode']} mode): torch "
           f"{meta['torch']}, device {meta['device']}, "
           f"{meta['threads']} threads, {meta['repeats']} repeats after "
           f"{meta['warmup']} warm-up (median), seed {meta['seed']}"]
    views = dict(results)
    views['step_detail'] = [
        dict(r, assign=f"{r['student_assign_calls']}/"
             f"{r['ds2d2_assign_calls']}",
             anchors=f"{r['student_anchor_generations']}/"
             f"{r['ds2d2_anchor_generations']}",
             syncs='n/a (CPU)' if r['ds2d2_syncs'] is None else
             f"{r['student_syncs']}/{r['ds2d2_syncs']}")
        for r in results.get('step', [])]
    views['memory_graph'] = [
        dict(r, calls=f"{r['step_teacher_only_calls']} "
             f"({r['step_teacher_only_grad_calls']})")
        for r in results.get('memory', [])]
    for key, title in TITLES.items():
        if views.get(key):
            out += ['', title, table(views[key], COLUMNS[key])]
    for row in results.get('skipped', []):
        out.append(f"skipped {row['detector']}: {row['reason']}")
    if meta['mode'] == 'quick':
        out.append('quick mode: sizes below the targets\' conditions; the '
                   'results are indicative only')
    sections = ', '.join(f'{k} {v:.1f} s'
                         for k, v in meta['section_s'].items())
    out.append(f"wall time {meta['wall_s']:.1f} s ({sections})")
    return '\n'.join(out)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='small sizes and few repeats (CI)')
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help=f'comma-separated subset of {SECTIONS}')
    parser.add_argument('--detectors', default=','.join(DETECTORS),
                        help=f'comma-separated subset of {tuple(DETECTORS)}')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--threads', type=int,
                        help="torch's intra-op threads (default: torch's)")
    parser.add_argument('--repeats', type=int,
                        help='timed repeats per figure (median)')
    parser.add_argument('--warmup', type=int, help='warm-up calls')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write every figure to this file')
    args = parser.parse_args(argv)
    for option, valid in (('sections', SECTIONS), ('detectors', DETECTORS)):
        chosen = [s for s in getattr(args, option).split(',') if s]
        wrong = [s for s in chosen if s not in valid]
        if wrong:
            parser.error(f'--{option}: unknown {wrong}; choose from '
                         f'{tuple(valid)}')
        setattr(args, option, chosen)
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark, print the report, return every figure."""
    args = parse_args(argv)
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    opts = settings(args.quick)
    for key in ('repeats', 'warmup'):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    opts.update(quick=args.quick, seed=args.seed, detectors=args.detectors)
    torch.manual_seed(args.seed)

    import ds2d2_mmrazor  # noqa: F401  (registers the modules)
    results: dict = dict(meta=dict(
        mode='quick' if args.quick else 'full', device=str(device),
        torch=torch.__version__, threads=torch.get_num_threads(),
        python=platform.python_version(), machine=platform.machine(),
        repeats=opts['repeats'], warmup=opts['warmup'], seed=args.seed,
        sections=list(args.sections)))
    section_s = results['meta']['section_s'] = {}
    for section, bench in (('disw', bench_disw), ('stream', bench_stream)):
        if section in args.sections:
            begin = time.perf_counter()
            with quiet_logs():
                results.update(bench(opts, device))
            section_s[section] = time.perf_counter() - begin
    if {'step', 'memory'} & set(args.sections):
        begin = time.perf_counter()
        results.update(bench_detectors(opts, args.sections, device))
        section_s['step+memory'] = time.perf_counter() - begin
    results['targets'] = targets(results)
    results['meta']['wall_s'] = time.perf_counter() - start
    print(report(results), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
    sys.exit(0)
