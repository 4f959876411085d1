"""Benchmark of DS2D2's distillation overhead, with the targets it must meet.

    python tools/benchmark.py                  # full mode, by hand (minutes)
    python tools/benchmark.py --quick          # CI: small sizes, seconds
    python tools/benchmark.py --json out.json --device cuda --threads 8
    python tools/benchmark.py --sections disw,stream --detectors retinanet
    python tools/benchmark.py --sections step --step-time 5   # shorter

A thin command line over :mod:`bench` (``tools/bench/``), one module per
section: ``disw`` (:mod:`bench.disw`), ``stream`` (:mod:`bench.stream`),
``step`` (:mod:`bench.step`, its floor in :mod:`bench.floor`), ``memory``
(:mod:`bench.memory`); the targets and tables are in :mod:`bench.report`
(see ``docs/benchmark.md``). Times are medians of
``torch.utils.benchmark.Timer.blocked_autorange``. The exit code is 0
whether targets pass or fail (they are printed); it is non-zero only when
the benchmark itself fails.
"""
import argparse
import json
import platform
import sys
import time
from typing import Optional, Sequence

import torch

from bench.disw import bench_disw
from bench.memory import bench_memory
from bench.report import format_report, targets
from bench.step import (DETECTORS, available_detectors, bench_step,
                        build_algorithm, make_batch, model_config,
                        quiet_logs)
from bench.stream import bench_stream

SECTIONS = ('disw', 'stream', 'step', 'memory')
#: the explicit stream's modules come from this detector's config
STREAM_CONFIG = 'retinanet'


def settings(quick: bool) -> dict:
    """Sizes and minimum run times (s) of the full or quick (CI) mode."""
    if quick:
        return dict(disw_sizes=(800, ), disw_boxes=(10, 1000),
                    disw_time=0.05, stream_size=128, stream_time=0.1,
                    step_size=64, step_objects=30, step_time=0.2)
    return dict(disw_sizes=(800, 1024), disw_boxes=(10, 100, 1000, 5000),
                disw_time=0.5, stream_size=800, stream_time=3.0,
                step_size=512, step_objects=30, step_time=30.0)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='small sizes, short runs (CI)')
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help=f'comma-separated subset of {SECTIONS}')
    parser.add_argument('--detectors', default=','.join(DETECTORS),
                        help=f'comma-separated subset of {tuple(DETECTORS)}')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--threads', type=int,
                        help="torch's intra-op threads (default: torch's)")
    parser.add_argument('--step-time', type=float,
                        help='seconds of timed calls per part of the step '
                        'and of its floor, and for the stream inside it '
                        "(default: the mode's)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write every figure to this file')
    args = parser.parse_args(argv)
    for option, valid in (('sections', SECTIONS), ('detectors', DETECTORS)):
        chosen = [s for s in getattr(args, option).split(',') if s]
        wrong = [s for s in chosen if s not in valid]
        if wrong or not chosen:
            parser.error(f'--{option}: unknown {wrong or "(none given)"}; '
                         f'choose from {tuple(valid)}')
        setattr(args, option, chosen)
    if args.device not in ('cpu', 'cuda'):
        parser.error(f"--device: expected 'cpu' or 'cuda', got "
                     f'{args.device!r}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available here; '
                     'use --device cpu')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads: expected >= 1, got {args.threads}')
    if args.step_time is not None and not args.step_time > 0:
        parser.error(f'--step-time: expected > 0, got {args.step_time}')
    return args


def run_detectors(args: argparse.Namespace, opts: dict,
                  device: torch.device) -> dict:
    """Sections step and memory: build each detector once, then measure."""
    import gc
    names, skipped = available_detectors(args.detectors)
    results = dict(step=[], memory=[], skipped=[
        dict(detector=n, reason=r) for n, r in skipped.items()])
    for name in names:
        with quiet_logs():
            algorithm, cfg, num_classes = build_algorithm(
                name, args.quick, args.seed, device)
            data = make_batch(algorithm, opts['step_size'],
                              opts['step_objects'], num_classes,
                              name.startswith('rotated'), args.seed, device)
            if 'step' in args.sections:
                results['step'].append(bench_step(
                    name, algorithm, cfg, data, opts['step_time'],
                    opts['stream_time']))
            if 'memory' in args.sections:
                results['memory'].append(
                    bench_memory(name, algorithm, data, device))
        del algorithm, data
        gc.collect()
    return results


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark, print the report, return every figure."""
    args = parse_args(argv)
    start = time.perf_counter()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    opts = settings(args.quick)
    if args.step_time:
        opts.update(step_time=args.step_time, stream_time=args.step_time)
    torch.manual_seed(args.seed)
    results: dict = dict(meta=dict(
        mode='quick' if args.quick else 'full', device=str(device),
        torch=torch.__version__, threads=torch.get_num_threads(),
        python=platform.python_version(), machine=platform.machine(),
        seed=args.seed, sections=args.sections, detectors=args.detectors,
        settings=opts, section_s={}))
    section_s = results['meta']['section_s']
    if 'disw' in args.sections:
        begin = time.perf_counter()
        results['disw'] = bench_disw(opts['disw_sizes'], opts['disw_boxes'],
                                     opts['disw_time'], args.seed, device)
        section_s['disw'] = time.perf_counter() - begin
    if 'stream' in args.sections:
        begin = time.perf_counter()
        with quiet_logs():
            results['stream'] = bench_stream(
                model_config(STREAM_CONFIG).distiller, opts['stream_size'],
                256, 2, 30, opts['stream_time'], args.seed, device)
        section_s['stream'] = time.perf_counter() - begin
    if {'step', 'memory'} & set(args.sections):
        begin = time.perf_counter()
        results.update(run_detectors(args, opts, device))
        section_s['step+memory'] = time.perf_counter() - begin
    results['targets'] = targets(results)
    results['meta']['wall_s'] = time.perf_counter() - start
    note = ("quick mode: the stream's and the step's sizes are below the "
            "targets' conditions; those results are indicative only"
            if args.quick else None)
    print(format_report(results, note), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
    sys.exit(0)
