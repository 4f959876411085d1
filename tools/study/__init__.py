"""The paper's comparison and ablation tables, at CPU scale.

    python tools/study --out work_dirs/study          # RetinaNet, 5 seeds
    python tools/study --detector faster-rcnn --seeds 0 1 2
    python tools/study --quick --out /tmp/quick       # minutes

What it does:
0. pretrains a student-width and a teacher-width detector once, on a
   separate synthetic pool (seed 1000): teachers and students start from
   them (``--pretrain-init``: the whole detector, or only its backbone as
   from ImageNet);
1. per seed, draws a synthetic DIOR-format dataset (train, val and test
   splits; every model trains on train only), initialises the student once
   (every student row of the seed starts from these weights), trains one
   teacher (wider, longer) and one high-frequency amplifier from it;
2. trains every student row on one schedule: alone, DS2D2, CrossKD (the
   teacher's head on the student's features, at its recipe's index and at
   index 0), MMRazor's PKD / CWD / MGD (MGD's weight brought to this
   scale: its loss is a sum over elements) and FitNet on the same teacher,
   and the DS2D2 ablations; with ``--sweep``, every distillation row's
   weights x each factor on ``--sweep-seeds``, the factor with the best
   mean val AP50 kept (the same rule for every method) and trained on
   every seed; with ``--schedule``, the student alone at other epochs
   (the convergence curve);
3. evaluates every model on val (choices) and test (reported): COCO AP50,
   mAP, AP of small objects, AP50 on the denser half of the test images;
4. writes ``OUT/study.md``: the choices on val, then per method mean ±
   std and the paired per-seed differences to the student alone and to
   DS2D2 (mean, 95% t-interval, seeds won), failures as rows, the gradient
   balance of every loss term; and ``OUT/study_ap50.png``.

A run is reused when its config (and those of the runs it loads) hash as
before; otherwise it trains again. An interrupted run resumes from its last
checkpoint. A failed training or evaluation is a row with its reason.
"""
import argparse
import math
import os
import os.path as osp
import sys
import time
import warnings
from typing import Dict, List

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
for path in (TOOLS, osp.dirname(TOOLS)):
    if path not in sys.path:
        sys.path.insert(0, path)

from .evaluation import scalar_logs  # noqa: E402
from .methods import (CONFIGS, DETECTORS, Method, make_config,  # noqa: E402
                      methods, mgd_element_scale, scale_distill_weights,
                      wanted_rows)
from .report import Report  # noqa: E402
from .runner import Run, Study, plan, row_key  # noqa: E402
from .settings import QUICK, Settings, add_arguments, from_args  # noqa: E402
from .stats import mean_std, paired  # noqa: E402

__all__ = [
    'CONFIGS', 'DETECTORS', 'Method', 'Report', 'Run', 'Settings', 'Study',
    'main', 'make_config', 'mean_std', 'methods', 'mgd_element_scale',
    'paired', 'parse_args', 'plan', 'row_key', 'run_study',
    'scalar_logs', 'scale_distill_weights', 'sweep_choice', 'wanted_rows'
]


def sweep_choice(study: Study) -> tuple:
    """Per distillation row, val AP50 per factor on the sweep seeds, and
    the factor with the best mean (ties: the recipe's, then the smaller)."""
    s = study.settings
    scores: Dict[str, Dict[float, List[float]]] = {}
    chosen: Dict[str, float] = {}
    wanted = wanted_rows(s, study.rows)
    for name, method in study.rows.items():
        if method.group != 'compare' or name == 'baseline' or \
                name not in wanted:
            continue
        scores[name] = {}
        for factor in [1.0] + list(s.sweep):
            values = [study.value(f'{seed}/{row_key(name, factor)}',
                                  split='val') for seed in s.sweep_seeds]
            scores[name][factor] = [v for v in values if not math.isnan(v)]
        means = {f: sum(v) / len(v) for f, v in scores[name].items() if v}
        if means:
            chosen[name] = max(means, key=lambda f: (means[f], f == 1.0,
                                                     -f))
    return scores, chosen


def run_study(settings: Settings, out: str, jobs: int = 1,
              threads: int = 2) -> str:
    """Run (or reuse) every run of a study and write its report."""
    start = time.time()
    study = Study(settings, out, jobs, threads)
    os.makedirs(study.out, exist_ok=True)
    scores: Dict[str, Dict[float, List[float]]] = {}
    factors: Dict[str, float] = {}
    study.run_all(plan(settings, study.rows))
    if settings.sweep:  # then the sweep, and the chosen factors' rows
        study.run_all(plan(settings, study.rows, seeds=settings.sweep_seeds,
                           sweep=True))
        scores, factors = sweep_choice(study)
        study.run_all(plan(settings, study.rows, factors))
    report = Report(study, factors, scores).markdown()
    report += (f'\nWall time of this invocation: {time.time() - start:.0f}'
               ' s (runs reused from an earlier invocation cost nothing '
               'here).\n')
    with open(osp.join(study.out, 'study.md'), 'w') as f:
        f.write(report)
    return report


def parse_args(argv=None) -> argparse.Namespace:
    class Formatter(argparse.RawDescriptionHelpFormatter,
                    argparse.ArgumentDefaultsHelpFormatter):
        """The description as written, every option's default."""

    parser = argparse.ArgumentParser(
        prog='python tools/study', description=__doc__,
        formatter_class=Formatter)
    parser.add_argument('--out', default=osp.join(osp.dirname(TOOLS),
                                                  'work_dirs', 'study'))
    add_arguments(parser)
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings at once (use --threads 1 with 2)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads of each training')
    parser.add_argument('--quick', action='store_true',
                        help='other defaults: tiny data, one seed, a few '
                        f'rows, a few epochs ({QUICK}); checks that '
                        'everything runs')
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)
    return parser.parse_args(argv)


def main(argv=None) -> str:
    # mmengine / mmcv import pkg_resources: one warning per evaluation
    warnings.filterwarnings('ignore', 'pkg_resources is deprecated')
    args = parse_args(argv)
    report = run_study(from_args(args), args.out, args.jobs, args.threads)
    print('\n' + report)
    return report
