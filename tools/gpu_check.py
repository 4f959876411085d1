"""The GPU check: does DS2D2 run, and compute the same, on a CUDA device?

    bash tools/gpu_check.sh                  # bare CUDA machine (docs/gpu.md)
    python tools/gpu_check.py --device cuda  # the stack already installed
    python tools/gpu_check.py --device cpu   # the dry run CI makes

Checks, each ``passed``, ``failed`` or ``skipped`` (with the reason) in one
JSON summary (``OUT/gpu_check.json``), then a short table:

* ``env``: the environment report of ``make env``;
* ``benchmark``: ``tools/benchmark.py --quick`` on the device, and its step
  section for RetinaNet at the recipe's sizes (``--sizes full``); the step
  target (DS2D2 step / its floor) is reported, not asserted;
* ``stages/<detector>/<precision>``: teacher, high-frequency amplifier and
  DS2D2 student on generated data, one short epoch each, through
  ``tools/train.py`` (``--amp`` for ``amp``), evaluation included; every
  loss term logged at every iteration must be finite. ``amp`` runs on CUDA
  only: MMEngine's ``AmpOptimWrapper`` refuses the CPU;
* ``terms/<detector>``: the first iteration's loss terms on the device
  against the CPU for the same weights, batch and seed, in fp32 with TF32
  off (relative tolerance :data:`TERMS_RTOL`), and under autocast (fp16 on
  CUDA, bf16 on the CPU: finite, their deviation reported);
* ``disw``: DISW maps of random boxes on the device against the CPU
  (absolute tolerance :data:`DISW_ATOL`) and against the per-box reference;
* ``syncs/<detector>``: host-device synchronisations of one DS2D2 training
  step beyond the student's step and the teacher's features, at two box
  counts: they must not grow with the boxes. On CUDA they are counted by
  ``torch.cuda.set_sync_debug_mode``; everywhere, the calls that make one
  on a GPU (``item``, ``nonzero``, boolean indexing, ...) are counted too.

The exit code is 1 if any check failed, 0 otherwise.
"""
import argparse
import contextlib
import copy
import glob
import importlib
import json
import math
import os
import os.path as osp
import platform
import sys
import time
import traceback
import warnings
from collections import Counter
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch.overrides import TorchFunctionMode

TOOLS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TOOLS)
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

#: detector -> its teacher, amplifier and DS2D2 student configs
FAMILIES = {
    'retinanet': ('retinanet_r101_fpn_2x_dior.py',
                  'ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py',
                  'ds2d2_retina_r18_r101_dior.py'),
    'faster-rcnn': ('faster-rcnn_r101_fpn_2x_dior.py',
                    'ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py',
                    'ds2d2_faster-rcnn_r18_r101_dior.py'),
    'rotated-retinanet': (
        'rotated-retinanet-le90_r101_fpn_2x_dior-r.py',
        'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_dior-r.py',
        'ds2d2_rotated-retina-le90_r18_r101_dior-r.py'),
}
#: the DS2D2 terms the student stage must log (MMRazor prefixes them with
#: ``distill.``; a dict-valued term logs one entry per key)
DS2D2_TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')


def ds2d2_terms(names) -> List[str]:
    """The names among ``names`` that are DS2D2 terms."""
    return [n for n in names if n.startswith('distill.')
            and n.split('.', 1)[1].startswith(DS2D2_TERMS)]


def missing_ds2d2_terms(names) -> List[str]:
    found = ds2d2_terms(names)
    return [t for t in DS2D2_TERMS
            if not any(n.split('.', 1)[1].startswith(t) for n in found)]
TERMS_RTOL = 1e-3  # device vs CPU, fp32, TF32 off
DISW_ATOL = 1e-5  # device vs CPU and vs the reference
SYNC_OBJECTS = (5, 50)  # boxes per image of the two sync counts


# ---------------------------------------------------------------------------
# checks and their summary


class CheckFailed(AssertionError):
    """A check ran and found something wrong (its message says what)."""


class Skip(Exception):
    """A check does not apply here (its message says why)."""


def run_check(name: str, fn: Callable[[], dict]) -> dict:
    """Run one check; return its row: ``name``, ``status``, ``seconds``,
    the figures ``fn`` returned and, if it did not pass, ``error``."""
    print(f'--> {name}', flush=True)
    start = time.perf_counter()
    row = dict(name=name, status='passed')
    try:
        row['figures'] = fn()
    except Skip as e:
        row.update(status='skipped', error=str(e))
    except Exception as e:  # noqa: BLE001 -- recorded; the exit code says
        row.update(status='failed', error=f'{type(e).__name__}: {e}',
                   traceback=traceback.format_exc(limit=-8))
    row['seconds'] = round(time.perf_counter() - start, 2)
    print(f'    {row["status"]} in {row["seconds"]} s'
          + (f': {row["error"]}' if 'error' in row else ''), flush=True)
    return row


def summary_table(rows: Sequence[dict]) -> str:
    """One line per check: name, status, seconds and its headline."""
    lines = [f'{"check":<34} {"status":<8} {"s":>7}  headline']
    for row in rows:
        headline = row.get('figures', {}).get('headline', '') \
            if row['status'] == 'passed' else row.get('error', '')
        lines.append(f'{row["name"]:<34} {row["status"]:<8} '
                     f'{row["seconds"]:>7.1f}  {headline}'[:160])
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# env


def check_env() -> dict:
    """``make env``: versions, compiled ops, repairs, imports."""
    from ds2d2_mmrazor import env
    output = []
    with contextlib.redirect_stdout(_Tee(output)):
        problems = env.report()
    if problems:
        raise CheckFailed('; '.join(problems))
    return dict(headline='stack imports, mmcv ops load, repairs applied',
                report=''.join(output))


class _Tee:
    """A stdout that also keeps what was written."""

    def __init__(self, keep: List[str]):
        self.keep = keep

    def write(self, text: str) -> int:
        self.keep.append(text)
        return sys.__stdout__.write(text)

    def flush(self) -> None:
        sys.__stdout__.flush()


# ---------------------------------------------------------------------------
# benchmark


def check_benchmark(device: str, sizes: str) -> dict:
    """The quick benchmark, and (``sizes='full'``) RetinaNet's step at the
    recipe's sizes; the step target (DS2D2 step / its floor <=
    ``bench.report.STEP_TARGET``) is reported in the headline, not
    asserted (timings are not what this check is for)."""
    import benchmark
    from bench.report import STEP_TARGET
    args = ['--device', device, '--quick']
    if device == 'cpu':  # the dry run: what CI's benchmark test leaves out
        args += ['--detectors', 'retinanet']
    quick = benchmark.main(args)
    figures = dict(quick=quick)
    step = quick['step'][0] if quick['step'] else {}
    headline = (f'quick step / floor {step.get("floor_ratio", math.nan):.2f}'
                f' (target <= {STEP_TARGET:.2f})')
    if sizes == 'full':
        full = benchmark.main(['--device', device, '--sections', 'step',
                               '--detectors', 'retinanet',
                               '--step-time', '5'])
        figures['full_step'] = full
        step = full['step'][0]
        headline = (f'RetinaNet {step["input"]} px: step '
                    f'{step["ds2d2_step_ms"]:.0f} ms / floor '
                    f'{step["floor_ms"]:.0f} ms (student '
                    f'{step["student_step_ms"]:.0f}, teacher '
                    f'{step["teacher_features_ms"]:.0f}, heads '
                    f'{step["head_passes_ms"]:.0f}) = '
                    f'{step["floor_ratio"]:.2f}, target <= '
                    f'{STEP_TARGET:.2f}')
    figures['headline'] = headline
    return figures


# ---------------------------------------------------------------------------
# stages


def make_data(out: str) -> str:
    """A small generated dataset in DIOR's layout (horizontal and oriented
    annotations), once per output folder."""
    from synthetic.data import make_synthetic_dior
    root = osp.join(out, 'data')
    if not osp.isdir(root):
        make_synthetic_dior(root, num_trainval=8, num_test=4, image_size=64,
                            max_objects=8)
    return root + '/'


def logged_terms(work_dir: str) -> List[Dict[str, float]]:
    """The loss terms of every training iteration in a run's scalar log."""
    records = []
    for log in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                         'scalars.json'))):
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                terms = {k: v for k, v in record.items()
                         if k.rsplit('.', 1)[-1].startswith('loss')}
                if terms:
                    records.append(terms)
    return records


def train_stage(config: str, data: str, work_dir: str, amp: bool,
                inputs: Dict[str, str]) -> List[Dict[str, float]]:
    """One stage through ``tools/train.py``; return its logged terms."""
    import train
    from synthetic.tiny import tiny_config
    cfg = tiny_config(config, data, work_dir, image_size=64, max_epochs=1)
    for key, value in inputs.items():
        cfg.model[key] = value
    # names of their own: MMEngine keeps one logger and one visualizer
    # (the scalar log's writer) per name in a process
    name = osp.basename(work_dir)
    cfg.visualizer.name = name
    path = osp.join(work_dir, name + '.py')
    os.makedirs(work_dir, exist_ok=True)
    cfg.dump(path)
    train.main([path, '--work-dir', work_dir] + (['--amp'] if amp else []))
    return logged_terms(work_dir)


def check_stages(detector: str, precision: str, device: str,
                 out: str) -> dict:
    """Teacher -> amplifier -> DS2D2 student, every logged term finite."""
    if precision == 'amp' and device == 'cpu':
        raise Skip("MMEngine's AmpOptimWrapper runs on GPU / NPU / MLU / "
                   'MUSA only; the autocast terms of terms/* run on the CPU')
    teacher, amplifier, student = (osp.join(REPO, 'configs', c)
                                   for c in FAMILIES[detector])
    data = make_data(out)
    root = osp.join(out, 'stages', f'{detector}-{precision}')
    ckpt = {}
    figures = dict(iterations={})
    amp = precision == 'amp'
    for stage, config, inputs in (
            ('teacher', teacher, {}),
            ('amplifier', amplifier, dict(teacher_ckpt='teacher')),
            ('student', student, dict(teacher_ckpt='teacher',
                                      amplifier_ckpt='amplifier'))):
        work_dir = osp.join(root, f'{detector}-{precision}-{stage}')
        terms = train_stage(config, data, work_dir, amp,
                            {k: ckpt[v] for k, v in inputs.items()})
        ckpt[stage] = osp.join(work_dir, 'epoch_1.pth')
        if not terms:
            raise CheckFailed(f'{stage}: no loss was logged')
        bad = [(i, k, v) for i, t in enumerate(terms) for k, v in t.items()
               if not math.isfinite(v)]
        if bad:
            raise CheckFailed(f'{stage}: non-finite terms (iteration, term, '
                              f'value): {bad[:5]}')
        figures['iterations'][stage] = len(terms)
        figures[stage] = terms[-1]
    missing = missing_ds2d2_terms(figures['student'])
    if missing:
        raise CheckFailed(f'the student stage did not log {missing}')
    figures['headline'] = (
        'iterations ' + '/'.join(str(n) for n in
                                 figures['iterations'].values())
        + ', all terms finite; last loss '
        + f'{figures["student"]["loss"]:.3f}')
    return figures


# ---------------------------------------------------------------------------
# terms


def loss_terms(algorithm, data: dict, seed: int = 0) -> Dict[str, float]:
    """``algorithm.loss`` on one batch, each logged term as a float."""
    torch.manual_seed(seed)  # samplers draw from the CPU generator
    losses = algorithm.loss(data['inputs'], data['data_samples'])
    _, log_vars = algorithm.parse_losses(losses)
    return {k: float(v) for k, v in log_vars.items()}


def to_device(data: dict, device: str) -> dict:
    return dict(inputs=data['inputs'].to(device),
                data_samples=[s.to(device) for s in data['data_samples']])


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """TF32 off for matrix products and cuDNN convolutions."""
    matmul, cudnn = (torch.backends.cuda.matmul.allow_tf32,
                     torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def relative_differences(got: Dict[str, float],
                         want: Dict[str, float]) -> Dict[str, float]:
    """``|got - want| / |want|`` per term (0 where both are 0)."""
    if set(got) != set(want):
        raise CheckFailed(f'different terms: {sorted(set(got) ^ set(want))}')
    return {k: (0.0 if got[k] == want[k] else
                abs(got[k] - want[k]) / max(abs(want[k]), 1e-12))
            for k in want}


def check_terms(detector: str, device: str, size: int) -> dict:
    """First-iteration terms: device vs CPU (fp32), and under autocast."""
    from bench.step import build_algorithm, make_batch, quiet_logs
    cpu = torch.device('cpu')
    with quiet_logs():
        algorithm, _, num_classes = build_algorithm(detector, True, 0, cpu)
        data = make_batch(algorithm, size, 20, num_classes,
                          detector.startswith('rotated'), 0, cpu)
        # copies first: a training-mode loss updates BN statistics
        on_device, autocast_model = (copy.deepcopy(algorithm).to(device)
                                     for _ in range(2))
        device_data = to_device(data, device)
        with full_fp32():
            want = loss_terms(algorithm, data)
            got = loss_terms(on_device, device_data)
        dtype = torch.float16 if device == 'cuda' else torch.bfloat16
        mixed = None
        if device == 'cuda' or not hasattr(algorithm.student, 'rpn_head'):
            with torch.autocast(torch.device(device).type, dtype=dtype):
                mixed = loss_terms(autocast_model, device_data)
    rel = relative_differences(got, want)
    bad = {k: v for k, v in rel.items() if not v <= TERMS_RTOL}
    if bad:
        raise CheckFailed(f'{device} vs cpu beyond rtol {TERMS_RTOL}: {bad} '
                          f'(cpu {want}, {device} {got})')
    if missing_ds2d2_terms(want):
        raise CheckFailed(f'DS2D2 terms {missing_ds2d2_terms(want)} missing '
                          f'from {sorted(want)}')
    ds2d2 = ds2d2_terms(want)
    figures = dict(cpu=want, device=got, relative=rel, size=size,
                   autocast_dtype=str(dtype))
    headline = (f'max rel diff {max(rel.values()):.1e} (DS2D2 terms '
                f'{max(rel[k] for k in ds2d2):.1e})')
    if mixed is None:
        figures['autocast'] = headline_note = (
            "not run: mmcv 2.0.1's CPU nms (the RPN's proposals) takes "
            'float32 only')
        return dict(figures, headline=f'{headline}; autocast {headline_note}')
    mixed_bad = {k: v for k, v in mixed.items() if not math.isfinite(v)}
    if mixed_bad:
        raise CheckFailed(f'non-finite terms under {dtype} autocast: '
                          f'{mixed_bad}')
    mixed_rel = relative_differences(mixed, want)
    return dict(figures, autocast=mixed, autocast_relative=mixed_rel,
                headline=f'{headline}; {str(dtype)[6:]} autocast finite, '
                f'DS2D2 terms within {max(mixed_rel[k] for k in ds2d2):.1e}')


# ---------------------------------------------------------------------------
# disw


def check_disw(device: str) -> dict:
    """DISW maps on the device vs the CPU vs the reference loop."""
    from bench.inputs import grid_sizes, random_boxes
    from ds2d2_mmrazor.ops import disw_pyramid, disw_reference
    generator = torch.Generator().manual_seed(0)
    rows = []
    for size in (800, 1024):
        grids, hw = grid_sizes(size), (size, size)
        for rotated in (False, True):
            for num in (1, 100, 1000):
                boxes = [random_boxes(num, size, rotated, generator)]
                cpu = disw_pyramid(boxes, grids, hw)
                dev = disw_pyramid([b.to(device) for b in boxes], grids, hw)
                row = dict(input=size, rotated=rotated, boxes=num,
                           device_vs_cpu=max(
                               (a.cpu() - b).abs().max().item()
                               for a, b in zip(dev, cpu)))
                if num <= 100:  # one Python iteration per box and level
                    row['cpu_vs_reference'] = max(
                        (disw_reference(boxes, g, hw) - m).abs().max().item()
                        for g, m in zip(grids, cpu))
                if dev[0].device.type != torch.device(device).type:
                    raise CheckFailed(f'maps on {dev[0].device}, boxes on '
                                      f'{device}')
                rows.append(row)
    worst = max(max(r.get('cpu_vs_reference', 0), r['device_vs_cpu'])
                for r in rows)
    if not worst <= DISW_ATOL:
        raise CheckFailed(f'maps differ by {worst:.2e} > {DISW_ATOL}: {rows}')
    return dict(headline=f'{len(rows)} cases, max abs diff {worst:.1e}',
                cases=rows)


# ---------------------------------------------------------------------------
# syncs


#: calls that wait for the device (a boolean mask index, ``cpu()`` and
#: one-argument ``where`` are recognised by their arguments)
SYNC_CALLS = frozenset({
    'item', 'tolist', 'numpy', '__bool__', '__int__', '__float__',
    '__index__', 'nonzero', 'argwhere', 'masked_select', 'unique',
    'unique_consecutive', 'bincount', 'repeat_interleave'})


def _is_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index, )
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
               for i in items)


class CountSyncCalls(TorchFunctionMode):
    """Counts the PyTorch calls that make the host wait for a GPU, whatever
    the device (on the CPU they are what would wait), with the line of
    this package, MMDetection, MMRotate or MMRazor that made each."""

    def __init__(self):
        super().__init__()
        self.sites: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        syncs = name in SYNC_CALLS or (
            name in ('__getitem__', '__setitem__') and len(args) > 1
            and _is_bool_index(args[1])) or (
            name == 'where' and len(args) + len(kwargs) == 1) or (
            name in ('cpu', 'to') and args
            and isinstance(args[0], torch.Tensor)
            and args[0].device.type != 'cpu'
            and (name == 'cpu' or 'cpu' in map(str, list(args[1:])
                                               + list(kwargs.values()))))
        if syncs:
            self.sites[_caller()] += 1
        return func(*args, **kwargs)

    @property
    def count(self) -> int:
        return sum(self.sites.values())


def _caller() -> str:
    """``package/file.py:line`` of the innermost OpenMMLab or DS2D2 frame."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        for package in ('ds2d2_mmrazor', 'mmdet', 'mmrotate', 'mmrazor',
                        'mmengine', 'mmcv'):
            marker = f'{os.sep}{package}{os.sep}'
            if marker in path:
                return (package + os.sep + path.split(marker, 1)[1]
                        + f':{frame.f_lineno}')
        frame = frame.f_back
    return 'other'


@contextlib.contextmanager
def count_cuda_syncs(sites: Counter) -> Iterator[None]:
    """Count CUDA synchronisations (``torch.cuda.set_sync_debug_mode``
    warnings) by the Python line that made each."""
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            yield
        finally:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode(previous)
    for w in caught:
        if 'synchronizing' in str(w.message):
            sites[f'{w.filename}:{w.lineno}'] += 1


def count_syncs(fn: Callable[[], object], cuda: bool) -> dict:
    """Sync-prone calls (and, on CUDA, synchronisations) of one call."""
    cuda_sites: Counter = Counter()
    mode = CountSyncCalls()
    with count_cuda_syncs(cuda_sites) if cuda else contextlib.nullcontext():
        with mode:
            fn()
    out = dict(calls=mode.count, call_sites=dict(mode.sites))
    if cuda:
        out.update(cuda=sum(cuda_sites.values()),
                   cuda_sites=dict(cuda_sites))
    return out


def check_syncs(detector: str, device: str, size: int) -> dict:
    """DS2D2's synchronisations per step do not grow with the boxes."""
    from bench.step import build_algorithm, make_batch, quiet_logs, \
        step_cases
    cuda = torch.device(device).type == 'cuda'
    figures = dict(objects=list(SYNC_OBJECTS))
    added = {}
    with quiet_logs():
        algorithm, _, num_classes = build_algorithm(
            detector, True, 0, torch.device(device))
        for objects in SYNC_OBJECTS:
            data = make_batch(algorithm, size, objects, num_classes,
                              detector.startswith('rotated'), 0,
                              torch.device(device))
            cases = step_cases(algorithm, data)
            for fn in cases.values():  # warm-up: lazy inits, cuDNN plans
                fn()
            counts = {k: count_syncs(fn, cuda) for k, fn in cases.items()}
            keys = ['calls'] + (['cuda'] if cuda else [])
            added[objects] = {k: counts['ds2d2_step'][k] - counts[
                'student_step'][k] - counts['teacher_features'][k]
                for k in keys}
            figures[f'{objects}_objects'] = counts
    figures['ds2d2_added'] = added
    small, large = (added[n] for n in SYNC_OBJECTS)
    if small != large:
        raise CheckFailed(f'syncs added by DS2D2 grow with the boxes: '
                          f'{SYNC_OBJECTS[0]} per image {small}, '
                          f'{SYNC_OBJECTS[1]} per image {large}')
    step = figures[f'{SYNC_OBJECTS[1]}_objects']
    kind = 'cuda' if cuda else 'calls'
    figures['headline'] = (
        f'DS2D2 adds {large[kind]} {"syncs" if cuda else "sync-prone calls"}'
        f' per step at {SYNC_OBJECTS[0]} and {SYNC_OBJECTS[1]} boxes/image '
        f'(step {step["ds2d2_step"][kind]}, student '
        f'{step["student_step"][kind]})')
    return figures


# ---------------------------------------------------------------------------
# main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument('--out', default=osp.join('work_dirs', 'gpu_check'),
                        help='where the summary, logs and runs go')
    parser.add_argument('--sizes', choices=['quick', 'full'],
                        help="'full' adds RetinaNet's step at the recipe's "
                        "sizes to the benchmark (default: full on cuda, "
                        'quick on cpu)')
    parser.add_argument('--detectors', default=','.join(FAMILIES),
                        help='comma-separated subset of '
                        f'{tuple(FAMILIES)} for stages, terms and syncs')
    parser.add_argument('--stage-detectors',
                        help='the detectors whose stages run (default: '
                        '--detectors)')
    parser.add_argument('--skip', default='',
                        help='comma-separated checks to leave out: '
                        'env, benchmark, stages, terms, disw, syncs')
    parser.add_argument('--build-seconds', type=float,
                        help="the mmcv build's time, for the summary")
    args = parser.parse_args(argv)
    if args.stage_detectors is None:
        args.stage_detectors = args.detectors
    for option in ('detectors', 'stage_detectors'):
        chosen = [d for d in getattr(args, option).split(',') if d]
        wrong = [d for d in chosen if d not in FAMILIES]
        if wrong or not chosen:
            parser.error(f'--{option.replace("_", "-")}: unknown '
                         f'{wrong or "(none)"}; choose from '
                         f'{tuple(FAMILIES)}')
        setattr(args, option, chosen)
    args.skip = {s for s in args.skip.split(',') if s}
    checks = {'env', 'benchmark', 'stages', 'terms', 'disw', 'syncs'}
    if args.skip - checks:
        parser.error(f'--skip: unknown {sorted(args.skip - checks)}; choose '
                     f'from {sorted(checks)}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: PyTorch sees no CUDA device here; use '
                     '--device cpu for the dry run')
    if args.sizes is None:
        args.sizes = 'full' if args.device == 'cuda' else 'quick'
    return args


def unavailable(reason: str) -> Callable[[], dict]:
    def skip() -> dict:
        raise Skip(reason)
    return skip


def plan(args: argparse.Namespace) -> List[tuple]:
    """``(name, function)`` of every check to run, in order; a detector
    whose package is not installed (MMRotate's) is skipped, saying so."""
    from bench.step import available_detectors
    out, device = args.out, args.device
    _, missing = available_detectors(FAMILIES)
    checks = [('env', check_env),
              ('disw', lambda: check_disw(device))]
    for detector in args.detectors:
        checks += [(f'terms/{detector}',
                    lambda d=detector: check_terms(d, device, 128)),
                   (f'syncs/{detector}',
                    lambda d=detector: check_syncs(d, device, 128))]
    for detector in args.stage_detectors:
        for precision in ('fp32', 'amp'):
            checks.append((f'stages/{detector}/{precision}',
                           lambda d=detector, p=precision:
                           check_stages(d, p, device, out)))
    checks = [(name, unavailable(missing[name.split('/')[1]])
               if '/' in name and name.split('/')[1] in missing else fn)
              for name, fn in checks]
    checks.append(('benchmark', lambda: check_benchmark(device, args.sizes)))
    return [(n, fn) for n, fn in checks if n.split('/')[0] not in args.skip]


def meta(args: argparse.Namespace) -> dict:
    info = dict(device=args.device, torch=torch.__version__,
                cuda=torch.version.cuda, python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(),
                sizes=args.sizes, detectors=args.detectors,
                stage_detectors=args.stage_detectors,
                skipped_checks=sorted(args.skip),
                mmcv_build_seconds=args.build_seconds,
                terms_rtol=TERMS_RTOL, disw_atol=DISW_ATOL)
    if args.device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability='.'.join(
            map(str, torch.cuda.get_device_capability(0))),
            gpu_memory_gib=round(props.total_memory / 2**30, 1))
    return info


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == 'cpu':  # MMEngine's Runner would take a GPU there is
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    os.makedirs(args.out, exist_ok=True)
    importlib.import_module('ds2d2_mmrazor')  # registers, allows ckpts
    summary = dict(meta=meta(args), checks=[])
    start = time.perf_counter()
    path = osp.join(args.out, 'gpu_check.json')
    for name, fn in plan(args):
        summary['checks'].append(run_check(name, fn))
        summary['meta']['wall_s'] = round(time.perf_counter() - start, 1)
        summary['ok'] = all(c['status'] != 'failed'
                            for c in summary['checks'])
        with open(path, 'w') as f:  # after every check: a crash keeps it
            json.dump(summary, f, indent=1)
    print('\n' + summary_table(summary['checks']))
    print(f'\n{"all checks passed" if summary["ok"] else "FAILED"} '
          f'({summary["meta"]["wall_s"]} s); summary: {path}')
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
