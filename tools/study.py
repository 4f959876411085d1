"""The paper's comparison and ablation tables, at CPU scale.

    python tools/study.py --out work_dirs/study              # RetinaNet
    python tools/study.py --detector faster-rcnn --seeds 0 1
    python tools/study.py --quick --out /tmp/quick           # minutes

Per seed, on a synthetic DIOR-format dataset drawn with that seed (train,
val and test splits; every model trains on train only):
1. one teacher (the R-101 recipe, wider and trained longer) and one
   high-frequency amplifier from it;
2. students on one schedule: alone, DS2D2, MMRazor's PKD / CWD / MGD and
   FitNet on the same teacher, and the DS2D2 ablations (explicit stream
   only, implicit only, W = 1 instead of DISW, without the HF amplifier,
   another wavelet basis);
3. every model is evaluated on val (for choices) and on test (reported):
   COCO AP50, mAP, AP of small objects and AP50 on the denser half of the
   test images (those with the most objects).

Outputs in ``--out``: ``study.md`` (mean +- std over seeds, each method's
difference to the student alone with its spread, the teacher-student gap
per seed, failed runs, the gradient balance of every loss term early and
late in training, and the weight sweep if one ran), ``study_ap50.png``
(bars with error bars) and ``gradient_balance.png``. Every run keeps its
own folder (``SEED/METHOD``): finished runs are reused and an interrupted
one resumes from its last checkpoint, so re-running the same command
continues the study. A run that stops on a non-finite loss, or a teacher
that does not beat the student alone, is reported, not dropped.

``--sweep 0.1 0.01`` adds a weight sweep: every distillation method's loss
weights times each factor, trained on ``--sweep-seeds``, the factor chosen
by val AP50 (the same rule for every method), then those weights trained
on every seed as extra rows.
"""
import argparse
import contextlib
import copy
import glob
import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, REPO)

import pipeline  # noqa: E402

CLASSES = ('vehicle', 'ship', 'storagetank', 'airplane', 'tenniscourt')
CONFIGS = osp.join(REPO, 'configs')
DETECTORS = {
    'retinanet': dict(
        teacher='retinanet_r101_fpn_2x_dior.py',
        amplifier='ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py',
        student='retinanet_r18_fpn_2x_dior.py',
        ds2d2='ds2d2_retina_r18_r101_dior.py'),
    'faster-rcnn': dict(
        teacher='faster-rcnn_r101_fpn_2x_dior.py',
        amplifier='ds2d2_amplifier_faster-rcnn_r101_fpn_2x_dior.py',
        student='faster-rcnn_r18_fpn_2x_dior.py',
        ds2d2='ds2d2_faster-rcnn_r18_r101_dior.py'),
}
PEERS = dict(pkd='PKD', cwd='CWD', mgd='MGD', fitnet='FitNet')
# the loss weights a distillation loss config may carry
WEIGHT_KEYS = ('loss_weight', 'low_weight', 'high_weight', 'alpha_mgd')
# a teacher not this much above the student alone (test AP50) "failed to
# learn": its seed is reported, and also left out of a second table
TEACHER_MARGIN = 0.02
METRICS = dict(AP50='coco/bbox_mAP_50', mAP='coco/bbox_mAP',
               AP_s='coco/bbox_mAP_s', AP50_dense='dense/bbox_mAP_50')


# --------------------------------------------------------------------------
# methods: how each run's config is made from the repository's configs
# --------------------------------------------------------------------------
def _drop_losses(cfg, *names: str) -> None:
    distiller = cfg.model.distiller
    for name in names:
        distiller.distill_losses.pop(name)
        distiller.loss_forward_mappings.pop(name)


def _without_amplifier(cfg) -> None:
    cfg.model.amplifier = None
    cfg.model.amplifier_ckpt = None


def explicit_only(cfg) -> None:
    _drop_losses(cfg, 'loss_amp_full', 'loss_amp_high')
    _without_amplifier(cfg)


def implicit_only(cfg) -> None:
    _drop_losses(cfg, 'loss_spectral')
    cfg.model.distiller.connectors = dict()


def without_disw(cfg) -> None:
    cfg.model.distiller.distill_losses.loss_spectral.disw = False


def without_hf_amplifier(cfg) -> None:
    _drop_losses(cfg, 'loss_amp_high')
    _without_amplifier(cfg)


def wavelet_db2(cfg) -> None:
    for connector in cfg.model.distiller.connectors.values():
        connector.wavelet = 'db2'


@dataclass
class Method:
    """A study row: which config it trains, what it needs, how it differs.

    Args:
        label (str): Row label.
        config (str): Key of ``DETECTORS[...]`` or a path under configs/.
        needs (tuple): Runs whose checkpoints it loads: 'teacher',
            'amplifier'.
        edit (callable, optional): Changes the tiny config (ablations).
        group (str): 'model' (teacher, amplifier), 'compare' or 'ablate'.
    """
    label: str
    config: str
    needs: tuple = ()
    edit: Optional[Callable] = None
    group: str = 'compare'


def methods(detector: str) -> Dict[str, Method]:
    """Every row of the study for one detector, in table order."""
    both = ('teacher', 'amplifier')
    rows = dict(
        teacher=Method('teacher (R-101 recipe)', 'teacher', group='model'),
        amplifier=Method('HF amplifier', 'amplifier', ('teacher', ),
                         group='model'),
        baseline=Method('student alone', 'student'),
        ds2d2=Method('DS2D2', 'ds2d2', both),
    )
    for name, label in PEERS.items():
        rows[name] = Method(label, f'peers/{name}_retina_r18_r101_dior.py',
                            ('teacher', ))
    rows.update(
        explicit=Method('DS2D2, explicit stream only', 'ds2d2', ('teacher', ),
                        explicit_only, 'ablate'),
        implicit=Method('DS2D2, implicit stream only', 'ds2d2', both,
                        implicit_only, 'ablate'),
        no_disw=Method('DS2D2 without DISW (W = 1)', 'ds2d2', both,
                       without_disw, 'ablate'),
        no_hf=Method('DS2D2 without HF amplifier', 'ds2d2', ('teacher', ),
                     without_hf_amplifier, 'ablate'),
        db2=Method('DS2D2, db2 wavelet', 'ds2d2', both, wavelet_db2,
                   'ablate'),
    )
    return rows


def scale_distill_weights(cfg, factor: float) -> None:
    """Multiply the weights of every distillation loss of a config.

    Raises:
        ValueError: If a loss has none of ``WEIGHT_KEYS``.
    """
    for name, loss in cfg.model.distiller.distill_losses.items():
        keys = [k for k in WEIGHT_KEYS if k in loss]
        if not keys:
            raise ValueError(f'distill loss {name!r} ({loss.type}) has none '
                             f'of {WEIGHT_KEYS}: cannot scale its weight')
        for key in keys:
            loss[key] = loss[key] * factor


# --------------------------------------------------------------------------
# settings and configs
# --------------------------------------------------------------------------
@dataclass
class Settings:
    """Data and schedule of a study (one schedule for every student)."""
    detector: str = 'retinanet'
    image_size: int = 128
    num_trainval: int = 128  # half train, half val
    num_test: int = 200
    teacher_epochs: int = 72
    # linear lr warm-up of the teacher, iterations (tiny_config's 10 left
    # 2 of 5 teachers stuck at the start: docs/study.md)
    teacher_warmup: int = 300
    epochs: int = 24  # amplifier and every student
    teacher_width: int = 32
    student_width: int = 8
    channels: int = 32
    batch_size: int = 4
    lr: float = 0.01
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    methods: Optional[List[str]] = None  # None: all
    sweep: List[float] = field(default_factory=list)
    sweep_seeds: List[int] = field(default_factory=lambda: [0])


def _splits(cfg) -> None:
    """Train on train, validate on val, test on test (the DIOR layout)."""
    train = cfg.train_dataloader.dataset
    train.datasets = [s for s in train.datasets
                      if s.ann_file.endswith('train.txt')]
    test = cfg.val_dataloader.dataset
    val = copy.deepcopy(test)
    val.update(ann_file='ImageSets/Main/val.txt',
               img_subdir='JPEGImages-trainval')
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.val_dataloader.dataset = val
    cfg.test_evaluator = [dict(type='CocoMetric', metric='bbox'),
                          dict(type='DenseHalfCocoMetric', metric='bbox',
                               prefix='dense')]


def make_config(settings: Settings, method: Method, data_root: str,
                work_dir: str, seed: int, factor: float = 1.0) -> str:
    """Write the tiny config of one run; return its path."""
    from synthetic.tiny import tiny_config
    config = DETECTORS[settings.detector].get(method.config, method.config)
    epochs = settings.teacher_epochs if method.config == 'teacher' \
        else settings.epochs
    cfg = tiny_config(
        osp.join(CONFIGS, config), data_root, work_dir,
        image_size=settings.image_size, max_epochs=epochs, classes=CLASSES,
        teacher_width=settings.teacher_width,
        student_width=settings.student_width, channels=settings.channels,
        batch_size=settings.batch_size, lr=settings.lr)
    if settings.detector != 'retinanet' and method.config.startswith('peers'):
        # the peers' FPN losses on the other detector pair
        pair = {k: tiny_config(
            osp.join(CONFIGS, DETECTORS[settings.detector][k]), data_root,
            work_dir, image_size=settings.image_size, classes=CLASSES,
            teacher_width=settings.teacher_width,
            student_width=settings.student_width,
            channels=settings.channels).model
            for k in ('student', 'teacher')}
        cfg.model.architecture = pair['student']
        cfg.model.teacher = pair['teacher']
    if method.config == 'teacher':
        for scheduler in cfg.param_scheduler:
            if scheduler.type == 'LinearLR':
                scheduler.end = settings.teacher_warmup
    if method.edit is not None:
        method.edit(cfg)
    if factor != 1.0:
        scale_distill_weights(cfg, factor)
    _splits(cfg)
    # the same for every run: tiny models at this lr need clipping to stay
    # stable (the distillation terms add large early gradients)
    cfg.optim_wrapper.clip_grad = dict(max_norm=35, norm_type=2)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    if 'distiller' in cfg.model:
        cfg.custom_hooks.append(dict(type='mmdet.GradientBalanceHook'))
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    return path


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def _register_dense_metric() -> None:
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import METRICS as METRIC_REGISTRY

    if METRIC_REGISTRY.get('DenseHalfCocoMetric') is not None:
        return

    @METRIC_REGISTRY.register_module()
    class DenseHalfCocoMetric(CocoMetric):
        """COCO AP on the half of the images with the most ground truth
        objects (ties by image id; a study-only metric)."""

        def compute_metrics(self, results: list) -> Dict[str, float]:
            ranked = sorted(results, key=lambda r: (-len(r[0]['anns']),
                                                    str(r[0]['img_id'])))
            return super().compute_metrics(ranked[:max(1, len(ranked) // 2)])


def evaluate(config: str, checkpoint: str, log: str) -> Dict[str, float]:
    """Test a trained run on the test split; COCO and dense-half metrics."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    _register_dense_metric()
    cfg = Config.fromfile(config)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(osp.dirname(config), 'test')
    cfg.experiment_name = f'test_{time.time_ns()}'
    cfg.custom_hooks = []
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    with open(log, 'w') as f, contextlib.redirect_stdout(f):
        metrics = Runner.from_cfg(cfg).test()
    return {k: float(v) for k, v in metrics.items()}


def scalar_logs(work_dir: str) -> List[str]:
    """MMEngine's scalars.json files of a run, oldest first."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))


def val_metrics(work_dir: str) -> Dict[str, float]:
    """The last evaluation (on val) the training run logged."""
    metrics: Dict[str, float] = {}
    for log in scalar_logs(work_dir):
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if METRICS['AP50'] in record:
                    metrics = record
    return metrics


def balance(work_dir: str) -> Dict[str, Dict[str, float]]:
    """Mean gradient-norm ratio per term, early and late (see the hook)."""
    path = osp.join(work_dir, 'gradient_balance.json')
    if not osp.isfile(path):
        return {}
    sums: Dict[str, Dict[str, List[float]]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            for term, ratio in record['ratios'].items():
                sums.setdefault(record['phase'], {}).setdefault(
                    term, []).append(ratio)
    return {phase: {t: sum(v) / len(v) for t, v in terms.items()}
            for phase, terms in sums.items()}


def failure_reason(out_file: str) -> str:
    """The error line a failed training run printed last."""
    with open(out_file, errors='replace') as f:
        lines = [ln.strip() for ln in f if 'Error' in ln or 'non-finite'
                 in ln]
    return lines[-1][:300] if lines else 'failed (see train.out)'


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------
@dataclass
class Run:
    key: str  # 'SEED/METHOD' or 'SEED/METHOD@FACTOR'
    seed: int
    method: str
    factor: float
    needs: Dict[str, str]  # config field -> key of the run it loads


def row_key(method: str, factor: float = 1.0) -> str:
    """A table row: 'METHOD', or 'METHOD@FACTOR' for scaled weights."""
    return method if factor == 1.0 else f'{method}@{factor:g}'


def run_key(seed: int, method: str, factor: float = 1.0) -> str:
    """A run: 'SEED/' and its row key."""
    return f'{seed}/{row_key(method, factor)}'


def _needs(seed: int, method: Method) -> Dict[str, str]:
    """Config field -> key of the run whose checkpoint it loads."""
    return {f'model.{n}_ckpt': run_key(seed, n) for n in method.needs}


def plan(settings: Settings, rows: Dict[str, Method],
         factors: Dict[str, float]) -> List[Run]:
    """Every run, teachers first; sweep runs and val-selected rows too."""
    runs = []
    wanted = settings.methods or list(rows)
    for seed in settings.seeds:
        for name in wanted:
            needs = _needs(seed, rows[name])
            runs.append(Run(run_key(seed, name), seed, name, 1.0, needs))
            factor = factors.get(name, 1.0)
            if factor != 1.0:
                runs.append(Run(run_key(seed, name, factor), seed, name,
                                factor, needs))
    return runs


def sweep_plan(settings: Settings, rows: Dict[str, Method]) -> List[Run]:
    runs = []
    for seed in settings.sweep_seeds:
        for name in (settings.methods or list(rows)):
            method = rows[name]
            if method.group != 'compare' or name == 'baseline':
                continue
            for factor in settings.sweep:
                runs.append(Run(run_key(seed, name, factor), seed, name,
                                factor, _needs(seed, method)))
    return runs


class Study:
    """Trains and evaluates the runs of a study; keeps one JSON per run."""

    def __init__(self, settings: Settings, out: str, jobs: int = 1,
                 threads: int = 2) -> None:
        self.settings = settings
        self.out = osp.abspath(out)
        self.jobs = jobs
        self.threads = threads
        self.rows = methods(settings.detector)
        unknown = set(settings.methods or []) - set(self.rows)
        if unknown:
            raise ValueError(f'unknown methods {sorted(unknown)}: expected '
                             f'some of {list(self.rows)}')
        self.results: Dict[str, dict] = {}
        self.trained: set = set()  # keys trained by this invocation

    def check_settings(self) -> None:
        """Refuse to mix runs of another data or schedule setting into
        ``out`` (the seeds, rows and sweep may change between calls)."""
        s = self.settings
        fixed = dict(detector=s.detector, image_size=s.image_size,
                     num_trainval=s.num_trainval, num_test=s.num_test,
                     teacher_epochs=s.teacher_epochs, epochs=s.epochs,
                     teacher_warmup=s.teacher_warmup,
                     teacher_width=s.teacher_width,
                     student_width=s.student_width, channels=s.channels,
                     batch_size=s.batch_size, lr=s.lr)
        path = osp.join(self.out, 'settings.json')
        if osp.isfile(path):
            with open(path) as f:
                earlier = json.load(f)
            changed = {k: (earlier.get(k), v) for k, v in fixed.items()
                       if earlier.get(k) != v}
            if changed:
                raise ValueError(
                    f'{self.out} holds a study with other settings '
                    f'(earlier, now): {changed}; give another --out')
        else:
            os.makedirs(self.out, exist_ok=True)
            with open(path, 'w') as f:
                json.dump(fixed, f, indent=1)

    def data_root(self, seed: int) -> str:
        from synthetic.data import make_synthetic_dior
        s = self.settings
        root = osp.join(self.out, 'data', f'seed{seed}') + '/'
        if not osp.isfile(osp.join(root, 'ImageSets', 'Main', 'test.txt')):
            make_synthetic_dior(root, num_trainval=s.num_trainval,
                                num_test=s.num_test,
                                image_size=s.image_size, classes=CLASSES,
                                seed=seed)
        return root

    def run_dir(self, key: str) -> str:
        """Where a run keeps its config, logs, checkpoint and result."""
        return osp.join(self.out, 'runs', key)

    def result_path(self, key: str) -> str:
        return osp.join(self.run_dir(key), 'result.json')

    def load(self, key: str) -> Optional[dict]:
        path = self.result_path(key)
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
        return None

    def save(self, key: str, result: dict) -> None:
        with open(self.result_path(key), 'w') as f:
            json.dump(result, f, indent=1)
        self.results[key] = result

    def start(self, run: Run) -> subprocess.Popen:
        work_dir = self.run_dir(run.key)
        config = make_config(self.settings, self.rows[run.method],
                             self.data_root(run.seed), work_dir, run.seed,
                             run.factor)
        ckpts = {key: self.results[key]['checkpoint']
                 for key in run.needs.values()}
        stage = pipeline.Stage(run.key, config,
                               {f: k for f, k in run.needs.items()})
        cmd = pipeline.command(stage, work_dir, ckpts)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads),
                   MKL_NUM_THREADS=str(self.threads))
        with open(osp.join(work_dir, 'command.txt'), 'w') as f:
            f.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
        out = open(osp.join(work_dir, 'train.out'), 'a')
        process = subprocess.Popen(cmd, stdout=out, stderr=out, env=env,
                                   cwd=REPO)
        process.started = time.time()  # type: ignore[attr-defined]
        process.log = out  # type: ignore[attr-defined]
        return process

    def finish(self, run: Run, process: subprocess.Popen) -> None:
        process.log.close()  # type: ignore[attr-defined]
        work_dir = self.run_dir(run.key)
        seconds = time.time() - process.started  # type: ignore
        if process.returncode != 0:
            reason = failure_reason(osp.join(work_dir, 'train.out'))
            self.save(run.key, dict(status='failed', reason=reason,
                                    seconds=seconds))
            print(f'  {run.key}: FAILED after {seconds:.0f} s: {reason}',
                  flush=True)
            return
        self.trained.add(run.key)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        test = evaluate(osp.join(work_dir, 'config.py'), checkpoint,
                        osp.join(work_dir, 'test.out'))
        val = val_metrics(work_dir)
        # CocoMetric reports nothing for a model without any detection
        # (e.g. NaN outputs): that is AP 0, not a missing value
        val = {k: val.get(v, 0.0) for k, v in METRICS.items()
               if k != 'AP50_dense'}
        test = {k: test.get(v, 0.0) for k, v in METRICS.items()}
        self.save(run.key, dict(
            status='ok', checkpoint=checkpoint, seconds=seconds, val=val,
            test=test, balance=balance(work_dir)))
        print(f'  {run.key}: {seconds:.0f} s, test AP50 {test["AP50"]:.3f},'
              f' val AP50 {val["AP50"]:.3f}', flush=True)

    def run_all(self, runs: List[Run]) -> None:
        """Run (or reuse) every run, at most ``jobs`` at a time."""
        import torch
        torch.set_num_threads(self.threads)  # the evaluations, here
        self.check_settings()
        pending = []
        for run in runs:
            result = self.load(run.key)
            if result is not None:
                self.results[run.key] = result
            elif run.key not in [r.key for r in pending]:
                pending.append(run)
        running: Dict[str, tuple] = {}
        while pending or running:
            for run in list(pending):
                if len(running) >= self.jobs:
                    break
                deps = [self.results.get(k) for k in run.needs.values()]
                if any(d is not None and d['status'] != 'ok' for d in deps):
                    pending.remove(run)
                    self.save_skip(run)
                    continue
                if all(d is not None for d in deps):
                    pending.remove(run)
                    print(f'{run.key}: training ({len(pending)} runs '
                          'waiting)', flush=True)
                    running[run.key] = (run, self.start(run))
            if not running and pending:
                missing = {k for r in pending for k in r.needs.values()
                           if k not in self.results}
                raise RuntimeError(f'runs {sorted(missing)} are needed but '
                                   'not planned: add their methods')
            time.sleep(0.5)
            for key, (run, process) in list(running.items()):
                if process.poll() is not None:
                    del running[key]
                    self.finish(run, process)

    def save_skip(self, run: Run) -> None:
        os.makedirs(osp.dirname(self.result_path(run.key)), exist_ok=True)
        failed = [k for k in run.needs.values()
                  if self.results[k]['status'] != 'ok']
        self.save(run.key, dict(status='skipped',
                                reason=f'{", ".join(failed)} failed'))

    def sweep_scores(self, name: str) -> Dict[float, List[float]]:
        """Factor -> val AP50 of each sweep seed whose run finished."""
        scores = {}
        for factor in [1.0] + list(self.settings.sweep):
            values = [self.results.get(run_key(seed, name, factor), {}).get(
                'val', {}).get('AP50', math.nan)
                for seed in self.settings.sweep_seeds]
            scores[factor] = [v for v in values if not math.isnan(v)]
        return scores

    def selected_factors(self) -> Dict[str, float]:
        """Per method, the sweep factor with the best mean val AP50."""
        chosen = {}
        for name, method in self.rows.items():
            if method.group != 'compare' or name == 'baseline':
                continue
            means = {factor: sum(v) / len(v)
                     for factor, v in self.sweep_scores(name).items() if v}
            if means:
                chosen[name] = max(means, key=means.get)
        return chosen

    def run(self) -> str:
        s = self.settings
        start = time.time()
        for seed in s.seeds:
            self.data_root(seed)
        factors: Dict[str, float] = {}
        if s.sweep:
            sweep_settings = copy.copy(s)
            sweep_settings.seeds = s.sweep_seeds
            self.run_all(plan(sweep_settings, self.rows, {})
                         + sweep_plan(s, self.rows))
            factors = self.selected_factors()
        self.run_all(plan(s, self.rows, factors))
        report = Report(self, factors).markdown()
        report += (f'\nWall time of this invocation: '
                   f'{time.time() - start:.0f} s (runs reused from an '
                   'earlier invocation cost nothing here).\n')
        with open(osp.join(self.out, 'study.md'), 'w') as f:
            f.write(report)
        return report


# --------------------------------------------------------------------------
# tables and pictures
# --------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return 'n/a'
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f'{100 * mean:.1f}'
    std = math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1))
    return f'{100 * mean:.1f} ± {100 * std:.1f}'


def table(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


class Report:
    """Markdown tables and pictures from a study's results."""

    def __init__(self, study: Study, factors: Dict[str, float]) -> None:
        self.study = study
        self.factors = factors
        self.seeds = study.settings.seeds

    def result(self, seed: int, key: str) -> dict:
        return self.study.results.get(f'{seed}/{key}', dict(status='absent'))

    def values(self, key: str, metric: str, split: str = 'test'
               ) -> List[float]:
        return [self.result(seed, key).get(split, {}).get(metric, math.nan)
                for seed in self.seeds]

    def row_keys(self, group: str) -> List[tuple]:
        """(key, label) of the rows of a table group, in order."""
        keys = []
        wanted = self.study.settings.methods or list(self.study.rows)
        for name, method in self.study.rows.items():
            if name not in wanted:
                continue
            if method.group == group or (group == 'ablate' and
                                         name == 'ds2d2'):
                keys.append((name, method.label))
                factor = self.factors.get(name, 1.0)
                if group == 'compare' and factor != 1.0:
                    keys.append((row_key(name, factor),
                                 f'{method.label}, '
                                 f'weights ×{factor:g} (chosen on val)'))
        return keys

    def status(self, key: str) -> str:
        """'ok runs / seeds', then why each other run did not finish."""
        bad = []
        for seed in self.seeds:
            result = self.result(seed, key)
            if result['status'] != 'ok':
                # the first sentence of the error, without its class name
                reason = result.get('reason', '').split(': ', 1)[-1]
                bad.append(f'seed {seed}: {result["status"]} '
                           f'({reason.split(". ")[0]})')
        ok = len(self.seeds) - len(bad)
        return f'{ok}/{len(self.seeds)}' + ('; ' + '; '.join(bad)
                                            if bad else '')

    def metric_table(self, group: str) -> str:
        base = self.values('baseline', 'AP50')
        rows = []
        for key, label in self.row_keys(group):
            cells = [label] + [mean_std(self.values(key, m)) for m in METRICS]
            if key == 'baseline':
                cells.append('—')
            else:
                diff = [v - b for v, b in zip(self.values(key, 'AP50'), base)]
                cells.append(mean_std(diff))
            cells.append(self.status(key))
            rows.append(cells)
        header = ['method', 'AP50', 'mAP', 'AP small', 'AP50 denser half',
                  'ΔAP50 vs alone', 'runs ok']
        return table(header, rows)

    def gap_table(self) -> str:
        rows = []
        for seed in self.seeds:
            t = self.result(seed, 'teacher').get('test', {}).get('AP50',
                                                                 math.nan)
            b = self.result(seed, 'baseline').get('test', {}).get('AP50',
                                                                  math.nan)
            verdict = 'ok' if t > b + TEACHER_MARGIN else \
                'teacher failed to learn'
            rows.append([str(seed), f'{100 * t:.1f}', f'{100 * b:.1f}',
                         f'{100 * (t - b):+.1f}', verdict])
        return table(['seed', 'teacher AP50', 'student alone AP50', 'gap',
                      'teacher'], rows)

    def learned(self) -> List[int]:
        """The seeds whose teacher beats the student alone on test."""
        return [seed for seed in self.seeds
                if self.result(seed, 'teacher').get('test', {}).get(
                    'AP50', math.nan) > self.result(seed, 'baseline').get(
                        'test', {}).get('AP50', math.nan) + TEACHER_MARGIN]

    def balance(self, key: str) -> Dict[str, Dict[str, float]]:
        """Term -> phase -> gradient-norm ratio, mean over seeds, with the
        per-level terms of a method (``loss_pkd_fpn0`` .. ``fpn4``) merged
        into one (``loss_pkd, all levels``) as sqrt(sum of squares): each
        touches only its own level, so this is exactly the ratio of their
        sum's gradient."""
        per_seed: Dict[str, Dict[str, List[float]]] = {}
        for seed in self.seeds:
            for phase, ratios in self.result(seed, key).get(
                    'balance', {}).items():
                merged: Dict[str, float] = {}
                for term, ratio in ratios.items():
                    stem, _, level = term.rpartition('_fpn')
                    if stem and level.isdigit():
                        term = f'{stem}, all levels'
                    merged[term] = merged.get(term, 0.0) + ratio**2
                for term, square in merged.items():
                    per_seed.setdefault(term, {}).setdefault(
                        phase, []).append(math.sqrt(square))
        return {term: {phase: sum(v) / len(v) for phase, v in phases.items()}
                for term, phases in per_seed.items()}

    def balance_table(self) -> str:
        rows = []
        seen = {'baseline'}
        for key, label in self.row_keys('compare') + self.row_keys('ablate'):
            if key in seen:
                continue
            seen.add(key)
            for term, phases in self.balance(key).items():
                rows.append([label, term] + [
                    f'{phases[phase]:.3g}' if phase in phases else 'n/a'
                    for phase in ('early', 'late')])
        return table(['method', 'term', 'early (first iterations)',
                      'late (last iterations)'], rows)

    def sweep_table(self) -> str:
        s = self.study.settings
        rows = []
        for name, method in self.study.rows.items():
            if name not in self.factors:
                continue
            cells = [method.label] + [
                mean_std(v) for v in self.study.sweep_scores(name).values()]
            cells.append(f'×{self.factors[name]:g}')
            rows.append(cells)
        header = ['method'] + [f'val AP50, ×{f:g}'
                               for f in [1.0] + list(s.sweep)] + ['chosen']
        return table(header, rows)

    def pictures(self) -> List[str]:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        out = self.study.out
        keys = self.row_keys('compare') + [
            k for k in self.row_keys('ablate') if k[0] != 'ds2d2']
        means, stds = [], []
        for key, _ in keys:
            v = [x for x in self.values(key, 'AP50') if not math.isnan(x)]
            m = sum(v) / len(v) if v else 0.0
            means.append(100 * m)
            stds.append(100 * math.sqrt(sum((x - m)**2 for x in v) /
                                        (len(v) - 1)) if len(v) > 1 else 0)
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(keys)), 4.5))
        colours = ['tab:gray' if k == 'baseline' else 'tab:red'
                   if k.startswith('ds2d2') else 'tab:blue'
                   if self.study.rows[k.split('@')[0]].group == 'compare'
                   else 'tab:orange' for k, _ in keys]
        ax.bar(range(len(keys)), means, yerr=stds, capsize=4,
               color=colours)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([label for _, label in keys], rotation=35,
                           ha='right', fontsize=8)
        ax.set_ylabel('test AP50 (%), mean ± std over seeds')
        ax.set_title(f'{self.study.settings.detector}: '
                     f'{len(self.seeds)} seed(s)')
        fig.tight_layout()
        ap_png = osp.join(out, 'study_ap50.png')
        fig.savefig(ap_png, dpi=100)
        plt.close(fig)

        bars = []  # the compared methods' terms, early then late
        for key, label in self.row_keys('compare'):
            for term, phases in self.balance(key).items():
                for phase in ('early', 'late'):
                    if phase in phases:
                        bars.append((f'{label}: {term} ({phase})',
                                     phases[phase]))
        fig, ax = plt.subplots(figsize=(8, max(3, 0.25 * len(bars))))
        if bars:
            ax.barh(range(len(bars)), [max(v, 1e-12) for _, v in bars],
                    color=['tab:green' if '(early)' in n else 'tab:purple'
                           for n, _ in bars])
            ax.set_yticks(range(len(bars)))
            ax.set_yticklabels([n for n, _ in bars], fontsize=6)
            ax.set_xscale('log')
            ax.axvline(1.0, color='k', lw=0.8)
        ax.set_xlabel('gradient norm on the student FPN / task loss\'s')
        fig.tight_layout()
        balance_png = osp.join(out, 'gradient_balance.png')
        fig.savefig(balance_png, dpi=100)
        plt.close(fig)
        return [ap_png, balance_png]

    def markdown(self) -> str:
        s = self.study.settings
        pictures = self.pictures()
        train = s.num_trainval - s.num_trainval // 2
        parts = [
            f'# DS2D2 study: {s.detector}, seeds {s.seeds}\n',
            f'Synthetic DIOR-format data per seed: {s.image_size} px, '
            f'~{train} train / ~{s.num_trainval - train} val / '
            f'{s.num_test} test images. Teacher: width {s.teacher_width}, '
            f'{s.teacher_epochs} epochs, {s.teacher_warmup}-iteration lr '
            'warm-up; amplifier and every student: '
            f'{s.epochs} epochs, student width {s.student_width}, FPN '
            f'{s.channels} channels, batch {s.batch_size}, lr {s.lr}. '
            'Test split metrics in %, mean ± std over seeds (sample std); '
            'Δ is the per-seed difference to the student alone.\n',
            '## Teacher vs student alone (test AP50)\n', self.gap_table(),
            '\n## Comparison with other distillation methods\n',
            self.metric_table('compare'),
            '\n## Ablations of DS2D2\n', self.metric_table('ablate'),
        ]
        learned = self.learned()
        if not learned:
            parts += ['\nNo seed\'s teacher beat the student alone: these '
                      'rows show distillation from teachers that did not '
                      'learn.\n']
        elif learned != self.seeds:
            every = self.seeds
            self.seeds = learned
            parts += [
                f'\n## The same, only seeds whose teacher learned '
                f'({learned})\n', self.metric_table('compare'), '\n',
                self.metric_table('ablate')]
            self.seeds = every
        parts += [
            '\n## Gradient balance on the student FPN\n',
            'Norm of each term\'s gradient on the five student FPN levels '
            'divided by the task loss\'s, mean over the first and the last '
            '3 iterations and over seeds.\n\n', self.balance_table(),
        ]
        if self.factors:
            parts += ['\n## Weight sweep (val split)\n', self.sweep_table()]
        parts += ['\nPictures: ' + ', '.join(osp.basename(p)
                                              for p in pictures) + '\n']
        return '\n'.join(parts)


# --------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = Settings()
    parser.add_argument('--out', default=osp.join(REPO, 'work_dirs', 'study'))
    parser.add_argument('--detector', choices=list(DETECTORS),
                        default=d.detector)
    parser.add_argument('--seeds', type=int, nargs='+', default=d.seeds)
    parser.add_argument('--methods', nargs='+', default=None,
                        help='rows to run (default: all); teacher and '
                        'amplifier are added when needed')
    parser.add_argument('--image-size', type=int, default=d.image_size)
    parser.add_argument('--num-trainval', type=int, default=d.num_trainval)
    parser.add_argument('--num-test', type=int, default=d.num_test)
    parser.add_argument('--teacher-epochs', type=int,
                        default=d.teacher_epochs)
    parser.add_argument('--epochs', type=int, default=d.epochs)
    parser.add_argument('--sweep', type=float, nargs='*', default=[],
                        help='weight factors to try for every distillation '
                        'method (chosen on val)')
    parser.add_argument('--sweep-seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings at once (use --threads 1 with 2)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads of each training')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data, 1 seed, a few methods, 1 epoch: '
                        'checks that everything runs')
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings(detector=args.detector, image_size=args.image_size,
                 num_trainval=args.num_trainval, num_test=args.num_test,
                 teacher_epochs=args.teacher_epochs, epochs=args.epochs,
                 seeds=args.seeds, methods=args.methods, sweep=args.sweep,
                 sweep_seeds=args.sweep_seeds)
    if args.quick:
        s = Settings(detector=args.detector, image_size=64, num_trainval=16,
                     num_test=8, teacher_epochs=4, epochs=4,
                     teacher_warmup=10,
                     teacher_width=8, channels=16, seeds=args.seeds[:1],
                     methods=args.methods or ['teacher', 'amplifier',
                                              'baseline', 'ds2d2', 'pkd',
                                              'no_disw'],
                     sweep=args.sweep, sweep_seeds=args.seeds[:1])
    if s.methods is not None:  # the models the chosen rows need
        rows = methods(s.detector)
        needed = {n for m in s.methods for n in rows[m].needs}
        needed |= {'baseline'}
        s.methods = [m for m in rows if m in set(s.methods) | needed]
    return s


def main(argv=None) -> str:
    # mmengine / mmcv import pkg_resources: one warning per evaluation
    warnings.filterwarnings('ignore', 'pkg_resources is deprecated')
    args = parse_args(argv)
    study = Study(settings_from(args), args.out, args.jobs, args.threads)
    report = study.run()
    print('\n' + report)
    return report


if __name__ == '__main__':
    main()
