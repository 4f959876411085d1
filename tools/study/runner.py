"""Plans the runs of a study and trains, reuses or evaluates each."""
import hashlib
import json
import math
import os
import os.path as osp
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pipeline

from . import evaluation
from .methods import (CLASSES, REPO, Method, make_config, methods,
                      wanted_rows)
from .settings import Settings

#: the seed of the pretraining pool's data (never a study seed)
PRETRAIN_SEED = 1000
#: the roles of the models every row needs
MODELS = ('pretrain_student', 'pretrain_teacher', 'init')


@dataclass
class Run:
    """One training (or the students' initialisation) of a study.

    Args:
        key (str): 'SEED/ROW', 'SEED/ROW@FACTOR' (weights x FACTOR),
            'SEED/baseline~xF' (epochs x F) or 'pretrain/MODEL'.
        role (str): 'pretrain', 'init', 'teacher', 'amplifier', 'student'.
        method (str): Row of :func:`methods` (or 'baseline' / 'teacher'
            for the pretraining and the initialisation).
        seed (int): Seed of data, splits and initialisation.
        needs (dict): Checkpoint name ('pretrained', 'init', 'teacher',
            'amplifier') -> key of the run that writes it.
        factor (float): Distillation weights x factor.
        epochs (int, optional): Epochs, if not the role's.
    """
    key: str
    role: str
    method: str
    seed: int
    needs: Dict[str, str] = field(default_factory=dict)
    factor: float = 1.0
    epochs: Optional[int] = None


def row_key(method: str, factor: float = 1.0) -> str:
    """A table row: 'METHOD', or 'METHOD@FACTOR' for scaled weights."""
    return method if factor == 1.0 else f'{method}@{factor:g}'


def schedule_key(factor: float) -> str:
    """The student alone at ``factor`` x the epochs."""
    return 'baseline' if factor == 1.0 else f'baseline~x{factor:g}'


def model_runs(settings: Settings, seed: int) -> Dict[str, Run]:
    """The runs every row of a seed may need, by their ``needs`` names."""
    runs = {}
    pre = settings.pretrain_images > 0
    if pre:
        for model in ('student', 'teacher'):
            runs[f'pretrain_{model}'] = Run(
                f'pretrain/{model}', 'pretrain',
                'baseline' if model == 'student' else 'teacher',
                PRETRAIN_SEED)
    runs['init'] = Run(f'{seed}/init', 'init', 'baseline', seed,
                       dict(pretrained='pretrain/student') if pre else {})
    runs['teacher'] = Run(f'{seed}/teacher', 'teacher', 'teacher', seed,
                          dict(pretrained='pretrain/teacher') if pre else {})
    runs['amplifier'] = Run(f'{seed}/amplifier', 'amplifier', 'amplifier',
                            seed, dict(teacher=f'{seed}/teacher'))
    return runs


def student_run(seed: int, name: str, method: Method, factor: float = 1.0,
                epochs: Optional[int] = None,
                key: Optional[str] = None) -> Run:
    needs = dict(init=f'{seed}/init')
    needs.update({n: f'{seed}/{n}' for n in method.needs})
    return Run(f'{seed}/{key or row_key(name, factor)}', 'student', name,
               seed, needs, factor, epochs)


def plan(settings: Settings, rows: Dict[str, Method],
         factors: Optional[Dict[str, float]] = None,
         seeds: Optional[List[int]] = None,
         sweep: bool = False) -> List[Run]:
    """Every run of ``seeds`` (default: the settings'), dependencies first.

    The rows of ``settings.methods`` (all if None), plus the val-chosen
    weight factor of each method in ``factors``; the student-alone
    schedule runs (``settings.schedule``) on the schedule seeds; with
    ``sweep``, every distillation row at every ``settings.sweep`` factor.
    """
    factors = factors or {}
    wanted = [n for n in wanted_rows(settings, rows)
              if rows[n].group != 'model' or settings.methods]
    wanted = ['baseline'] + [n for n in wanted if n != 'baseline']
    runs: List[Run] = []
    for seed in seeds if seeds is not None else settings.seeds:
        models = model_runs(settings, seed)
        needed = {'init'} | {n for name in wanted for n in rows[name].needs}
        needed |= {name for name in wanted if rows[name].group == 'model'}
        for name, run in models.items():
            if name.startswith('pretrain') or name in needed:
                runs.append(run)
        for name in wanted:
            if rows[name].group == 'model':
                continue
            method = rows[name]
            runs.append(student_run(seed, name, method))
            chosen = [factors[name]] if factors.get(name, 1.0) != 1.0 \
                else []
            if sweep and name != 'baseline':
                chosen = settings.sweep
            runs += [student_run(seed, name, method, f) for f in chosen]
        if seed in settings.schedule_seeds:
            for f in settings.schedule:
                runs.append(student_run(
                    seed, 'baseline', rows['baseline'],
                    epochs=max(1, round(settings.epochs * f)),
                    key=schedule_key(f)))
    unique: Dict[str, Run] = {}
    for run in runs:
        unique.setdefault(run.key, run)
    return list(unique.values())


def config_hash(path: str, deps: List[str]) -> str:
    """Hash of a run's config file and of the runs it loads."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        digest.update(f.read())
    for dep in sorted(deps):
        digest.update(dep.encode())
    return digest.hexdigest()[:16]


def save_initialisation(config: str, seed: int, path: str) -> None:
    """Build the student of ``config`` with ``seed``, initialise it
    (pretrained backbone if the config says so) and save its weights:
    every student method of the seed starts from them."""
    import torch
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed
    from mmengine.logging import MMLogger
    cfg = Config.fromfile(config)
    set_random_seed(seed)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # not one line per initialised parameter
    try:
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = DET_MODELS.build(cfg.model)
            model.init_weights()
    finally:
        logger.setLevel(level)
    torch.save(dict(state_dict=model.state_dict()), path)


class Study:
    """Trains and evaluates the runs of a study; one JSON result per run.

    A run's result is reused only when its config (and the results it
    loads) hash the same; otherwise its folder is emptied and it trains
    again. An interrupted run with the same hash resumes from its last
    checkpoint.
    """

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
        if PRETRAIN_SEED in settings.seeds:
            raise ValueError(f'seed {PRETRAIN_SEED} draws the pretraining '
                             'pool: choose other seeds')
        self.results: Dict[str, dict] = {}
        self.trained: set = set()  # keys trained by this invocation

    def data_root(self, seed: int) -> str:
        from synthetic.data import make_synthetic_dior
        s = self.settings
        pool = seed == PRETRAIN_SEED
        name = 'pretrain' if pool else f'seed{seed}'
        root = osp.join(self.out, 'data', name) + '/'
        if not osp.isfile(osp.join(root, 'ImageSets', 'Main', 'test.txt')):
            make_synthetic_dior(
                root, num_trainval=s.pretrain_images if pool
                else s.num_trainval, num_test=1 if pool else s.num_test,
                image_size=s.image_size, classes=CLASSES, seed=seed)
        return root

    def run_dir(self, key: str) -> str:
        """Where a run keeps its config, logs, checkpoint and result."""
        return osp.join(self.out, 'runs', key)

    def save(self, key: str, result: dict) -> None:
        os.makedirs(self.run_dir(key), exist_ok=True)
        with open(osp.join(self.run_dir(key), 'result.json'), 'w') as f:
            json.dump(result, f, indent=1)
        self.results[key] = result

    def prepare(self, run: Run) -> Optional[str]:
        """Write the run's config; return its hash if a result with that
        hash exists (reused), else empty a stale folder and return None."""
        work_dir = self.run_dir(run.key)
        ckpts = {name: self.results[key]['checkpoint']
                 for name, key in run.needs.items()}
        os.makedirs(work_dir, exist_ok=True)
        config = make_config(
            self.settings, run.role, self.rows[run.method],
            self.data_root(run.seed), work_dir, run.seed, ckpts, run.factor,
            run.epochs)
        digest = config_hash(config, [self.results[k]['hash']
                                      for k in run.needs.values()])
        run.hash = digest  # type: ignore[attr-defined]
        stamp = osp.join(work_dir, 'hash')
        earlier = None
        if osp.isfile(stamp):
            with open(stamp) as f:
                earlier = f.read().strip()
        if earlier == digest:
            result = osp.join(work_dir, 'result.json')
            if osp.isfile(result):
                with open(result) as f:
                    self.results[run.key] = json.load(f)
                return digest
        else:  # another config trained here: start afresh
            with open(config) as f:
                text = f.read()
            shutil.rmtree(work_dir)
            os.makedirs(work_dir)
            with open(config, 'w') as f:
                f.write(text)
            with open(stamp, 'w') as f:
                f.write(digest + '\n')
        return None

    def start(self, run: Run) -> Optional[subprocess.Popen]:
        """Start the run's training (None: done in this process)."""
        work_dir = self.run_dir(run.key)
        config = osp.join(work_dir, 'config.py')
        if run.role == 'init':
            path = osp.join(work_dir, 'init.pth')
            save_initialisation(config, run.seed, path)
            self.save(run.key, dict(status='ok', checkpoint=path,
                                    hash=run.hash, seconds=0.0))
            return None
        cmd = pipeline.command(pipeline.Stage(run.key, config), work_dir, {})
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
        """Record a finished training: failed, evaluation failed, or ok
        with val and test metrics and the gradient balance."""
        process.log.close()  # type: ignore[attr-defined]
        work_dir = self.run_dir(run.key)
        seconds = time.time() - process.started  # type: ignore
        base = dict(hash=run.hash, seconds=seconds)  # type: ignore
        if process.returncode != 0:
            reason = evaluation.failure_reason(
                osp.join(work_dir, 'train.out'))
            self.save(run.key, dict(base, status='failed', reason=reason))
            print(f'  {run.key}: FAILED after {seconds:.0f} s: {reason}',
                  flush=True)
            return
        self.trained.add(run.key)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        base.update(checkpoint=checkpoint)
        if run.role == 'pretrain':
            self.save(run.key, dict(base, status='ok'))
            print(f'  {run.key}: {seconds:.0f} s', flush=True)
            return
        try:
            test = evaluation.evaluate(osp.join(work_dir, 'config.py'),
                                       checkpoint,
                                       osp.join(work_dir, 'test.out'))
        except Exception as error:  # a row, not the end of the study
            self.save(run.key, dict(base, status='eval failed',
                                    reason=f'{type(error).__name__}: '
                                    f'{error}'[:300]))
            print(f'  {run.key}: evaluation FAILED: {error}', flush=True)
            return
        val = evaluation.val_metrics(work_dir)
        self.save(run.key, dict(base, status='ok', val=val, test=test,
                                balance=evaluation.balance(work_dir)))
        print(f'  {run.key}: {seconds:.0f} s, test AP50 {test["AP50"]:.3f},'
              f' val AP50 {val["AP50"]:.3f}', flush=True)

    def run_all(self, runs: List[Run]) -> None:
        """Run (or reuse) every run, at most ``jobs`` at a time; a run whose
        dependency failed is recorded as skipped."""
        import torch
        torch.set_num_threads(self.threads)  # the evaluations, here
        pending = list(runs)
        running: Dict[str, tuple] = {}
        while pending or running:
            for run in list(pending):
                if len(running) >= self.jobs:
                    break
                deps = [self.results.get(k) for k in run.needs.values()]
                if any(d is not None and d['status'] != 'ok' for d in deps):
                    pending.remove(run)
                    failed = [k for k in run.needs.values()
                              if self.results[k]['status'] != 'ok']
                    self.save(run.key, dict(
                        status='skipped', reason=f'{", ".join(failed)} '
                        'failed'))
                    continue
                if not all(d is not None for d in deps):
                    continue
                pending.remove(run)
                if self.prepare(run) is not None:
                    continue  # reused
                print(f'{run.key}: training ({len(pending)} runs waiting)',
                      flush=True)
                process = self.start(run)
                if process is not None:
                    running[run.key] = (run, process)
            if not running and pending and not any(
                    all(k in self.results for k in r.needs.values())
                    for r in pending):
                missing = {k for r in pending for k in r.needs.values()
                           if k not in self.results}
                raise RuntimeError(f'runs {sorted(missing)} are needed but '
                                   'not planned')
            time.sleep(0.5)
            for key, (run, process) in list(running.items()):
                if process.poll() is not None:
                    del running[key]
                    self.finish(run, process)

    def value(self, key: str, metric: str = 'AP50',
              split: str = 'test') -> float:
        """A run's metric, nan if it did not finish."""
        return self.results.get(key, {}).get(split, {}).get(metric,
                                                            math.nan)
