"""Markdown tables and pictures from a study's results."""
import math
import os.path as osp
from typing import Dict, List, Optional, Tuple

from . import stats
from .evaluation import METRICS
from .methods import wanted_rows
from .runner import Study, row_key, schedule_key

#: the regime the study aims at (on val): teacher - student alone of at
#: least GAP_MIN AP50, and (teacher - alone) / teacher within RELATIVE
GAP_MIN, RELATIVE = 0.03, (0.08, 0.35)
PARAM_RATIO_MAX = 4.0


def table(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def params(config: str) -> Optional[int]:
    """Parameters of the deployed detector of a run's config."""
    if not osp.isfile(config):
        return None
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    model = Config.fromfile(config).model
    model = model.get('architecture', model.get('detector', model))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return sum(p.numel() for p in MODELS.build(model).parameters())


class Report:
    """The study's report: choices on val, then test tables with paired
    differences over seeds."""

    def __init__(self, study: Study, factors: Dict[str, float],
                 sweep_scores: Dict[str, Dict[float, List[float]]]) -> None:
        self.study = study
        self.factors = factors
        self.sweep_scores = sweep_scores
        self.seeds = study.settings.seeds

    def values(self, key: str, metric: str = 'AP50',
               split: str = 'test') -> List[float]:
        return [self.study.value(f'{seed}/{key}', metric, split)
                for seed in self.seeds]

    def row_keys(self, group: str) -> List[Tuple[str, str]]:
        """(key, label) of a table's rows, in order."""
        keys = []
        s = self.study.settings
        wanted = wanted_rows(s, self.study.rows)
        for name, method in self.study.rows.items():
            if name not in wanted:
                continue
            if method.group == group or (group == 'ablate' and
                                         name == 'ds2d2'):
                keys.append((name, method.label))
                factor = self.factors.get(name, 1.0)
                if group == 'compare' and factor != 1.0:
                    keys.append((row_key(name, factor),
                                 f'{method.label}, weights ×{factor:g} '
                                 '(chosen on val)'))
        return keys

    def status(self, key: str) -> str:
        """'ok runs / seeds', then why each other run did not finish."""
        bad = []
        for seed in self.seeds:
            result = self.study.results.get(f'{seed}/{key}',
                                            dict(status='absent'))
            if result['status'] != 'ok':
                reason = result.get('reason', '').split(': ', 1)[-1]
                bad.append(f'seed {seed}: {result["status"]} '
                           f'({reason.split(". ")[0]})')
        ok = len(self.seeds) - len(bad)
        return f'{ok}/{len(self.seeds)}' + ('; ' + '; '.join(bad)
                                            if bad else '')

    # ---------------------------------------------------------------- val
    def schedule_table(self) -> str:
        """The student alone's val AP50 at each schedule (its choice)."""
        s = self.study.settings
        rows = []
        for f in sorted(set([1.0] + list(s.schedule))):
            keys = [f'{seed}/{schedule_key(f)}' for seed in s.schedule_seeds]
            val = [self.study.value(k, split='val') for k in keys]
            rows.append([f'{max(1, round(s.epochs * f))}',
                         ' / '.join(f'{100 * v:.1f}' for v in val),
                         stats.mean_std(val)])
        return table(['epochs', 'val AP50 per seed '
                      f'{list(s.schedule_seeds)}', 'mean ± std'], rows)

    def regime_table(self) -> Tuple[str, List[int]]:
        """Teacher and student alone on val per seed, with the regime's
        conditions; return the table and the seeds whose teacher learned
        (val AP50 at least GAP_MIN over the student alone)."""
        rows, learned = [], []
        for seed in self.seeds:
            t = self.study.value(f'{seed}/teacher', split='val')
            b = self.study.value(f'{seed}/baseline', split='val')
            gap = t - b
            rel = gap / t if t > 0 else math.nan
            ok = gap >= GAP_MIN
            in_regime = ok and RELATIVE[0] <= rel <= RELATIVE[1]
            if ok:
                learned.append(seed)
            rows.append([str(seed), f'{100 * t:.1f}', f'{100 * b:.1f}',
                         f'{100 * gap:+.1f}',
                         'n/a' if math.isnan(rel) else f'{100 * rel:.0f}%',
                         'yes' if in_regime else 'no'])
        return table(['seed', 'teacher val AP50', 'student alone val AP50',
                      'gap', 'gap / teacher', 'in the regime'],
                     rows), learned

    def sweep_table(self) -> str:
        s = self.study.settings
        rows = []
        for name, scores in self.sweep_scores.items():
            cells = [self.study.rows[name].label] + [
                stats.mean_std(scores.get(f, [])) for f in
                [1.0] + list(s.sweep)]
            cells.append(f'×{self.factors.get(name, 1.0):g}')
            rows.append(cells)
        return table(['method'] + [f'val AP50, ×{f:g}' for f in
                                   [1.0] + list(s.sweep)] + ['chosen'],
                     rows)

    # --------------------------------------------------------------- test
    def metric_table(self, group: str) -> str:
        base = self.values('baseline')
        ds2d2 = self.values('ds2d2')
        rows = []
        for key, label in self.row_keys(group):
            cells = [label] + [stats.mean_std(self.values(key, m))
                               for m in METRICS]
            cells.append(stats.mean_std(self.values(key, split='val')))
            ap50 = self.values(key)
            cells.append('—' if key == 'baseline' else
                         stats.paired(ap50, base).text())
            cells.append('—' if key == 'ds2d2' else
                         stats.paired(ap50, ds2d2).text())
            cells.append(self.status(key))
            rows.append(cells)
        return table(['method', 'AP50', 'mAP', 'AP small',
                      'AP50 denser half', 'val AP50',
                      'ΔAP50 vs alone [95% CI], seeds won',
                      'ΔAP50 vs DS2D2 [95% CI], seeds won', 'runs ok'],
                     rows)

    def balance(self, key: str) -> Dict[str, Dict[str, float]]:
        """Term -> phase -> gradient-norm ratio, mean over seeds; per-level
        terms (``loss_pkd_fpn0`` .. ``fpn4``) merged as the root of their
        summed squares (each touches only its own level)."""
        per_seed: Dict[str, Dict[str, List[float]]] = {}
        for seed in self.seeds:
            result = self.study.results.get(f'{seed}/{key}', {})
            for phase, ratios in result.get('balance', {}).items():
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
        rows, seen = [], {'baseline'}
        for key, label in self.row_keys('compare') + self.row_keys('ablate'):
            if key in seen:
                continue
            seen.add(key)
            for term, phases in self.balance(key).items():
                rows.append([label, term] + [
                    f'{phases[p]:.3g}' if p in phases else 'n/a'
                    for p in ('early', 'late')])
        return table(['method', 'term', 'early (first iterations)',
                      'late (last iterations)'], rows)

    def picture(self) -> str:
        """Paired ΔAP50 to the student alone with 95% intervals."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        base = self.values('baseline')
        keys = [k for k in self.row_keys('compare') + [
            k for k in self.row_keys('ablate') if k[0] != 'ds2d2']
            if k[0] != 'baseline']
        diffs = [stats.paired(self.values(k), base) for k, _ in keys]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(keys)), 4.5))
        means = [100 * d.mean if d.n else 0.0 for d in diffs]
        errors = [100 * (d.high - d.mean) if d.n > 1 else 0.0
                  for d in diffs]
        ax.bar(range(len(keys)), means, yerr=errors, capsize=4,
               color=['tab:red' if k.startswith('ds2d2') else 'tab:blue'
                      if self.study.rows[k.split('@')[0]].group == 'compare'
                      else 'tab:orange' for k, _ in keys])
        ax.axhline(0, color='k', lw=0.8)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([label for _, label in keys], rotation=35,
                           ha='right', fontsize=8)
        ax.set_ylabel('test ΔAP50 vs student alone (points), 95% CI')
        ax.set_title(f'{self.study.settings.detector}: '
                     f'{len(self.seeds)} seeds, paired')
        fig.tight_layout()
        path = osp.join(self.study.out, 'study_ap50.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def markdown(self) -> str:
        s = self.study.settings
        regime, learned = self.regime_table()
        seed = self.seeds[0]
        sizes = {name: params(osp.join(self.study.run_dir(f'{seed}/{name}'),
                                       'config.py'))
                 for name in ('teacher', 'baseline')}
        ratio = (sizes['teacher'] / sizes['baseline']
                 if all(sizes.values()) else math.nan)
        train = s.num_trainval - s.num_trainval // 2
        start = 'a' if s.pretrain_init == 'detector' else \
            'the backbone of a'
        pre = (f'teacher and student start from {start} detector of their '
               'width pretrained once on a separate pool of '
               f'{s.pretrain_images} images ({s.pretrain_epochs} epochs)'
               if s.pretrain_images else 'trained from scratch')
        parts = [
            f'# DS2D2 study: {s.detector}, seeds {s.seeds}\n',
            f'Synthetic DIOR-format data per seed: {s.image_size} px, '
            f'~{train} train / ~{s.num_trainval - train} val / '
            f'{s.num_test} test images; {pre}. Teacher: width '
            f'{s.teacher_width}, {s.teacher_epochs} epochs; amplifier and '
            f'every student: {s.epochs} epochs, student width '
            f'{s.student_width}; all: FPN {s.channels} channels, '
            f'{s.head_convs} head convs, batch {s.batch_size} (incomplete '
            f'batches dropped), lr {s.lr}, {s.warmup}-iteration warm-up, '
            f'clipping {s.clip:g}. Every student of a seed starts from the '
            'same initialisation. Teacher / student parameters: '
            f'{ratio:.2f}×. Metrics in %; Δ are paired per-seed '
            'differences: mean [95% t-interval], seeds won / seeds.\n',
            '## Choices on val\n',
            'The student alone at other schedules (val AP50):\n\n',
            self.schedule_table(),
            '\nTeacher vs student alone (val AP50; the regime: gap ≥ '
            f'{100 * GAP_MIN:.0f} points and gap / teacher in '
            f'{RELATIVE[0]:.0%}–{RELATIVE[1]:.0%}):\n\n', regime,
        ]
        if self.sweep_scores:
            parts += ['\nWeight sweep (val AP50, mean ± std over seeds '
                      f'{s.sweep_seeds}; the best mean is chosen):\n\n',
                      self.sweep_table()]
        parts += ['\n## Comparison with other distillation methods (test)\n',
                  self.metric_table('compare'),
                  '\n## Ablations of DS2D2 (test)\n',
                  self.metric_table('ablate')]
        if not learned:
            parts += ['\nNo seed\'s teacher beat its student alone on val '
                      f'by {100 * GAP_MIN:.0f} points: these rows distil '
                      'from teachers outside the regime.\n']
        elif learned != self.seeds:
            every, self.seeds = self.seeds, learned
            parts += [f'\n## The same, only seeds whose teacher learned on '
                      f'val ({learned})\n', self.metric_table('compare'),
                      '\n', self.metric_table('ablate')]
            self.seeds = every
        parts += ['\n## Gradient balance on the student FPN\n',
                  'Norm of each term\'s gradient on the five student FPN '
                  'levels divided by the task loss\'s, mean over the first '
                  'and the last 3 iterations and over seeds.\n\n',
                  self.balance_table(),
                  f'\nPicture: {osp.basename(self.picture())}\n']
        return '\n'.join(parts)
