"""How hard each DS2D2 term pulls on the student's FPN, across image sizes,
model shapes and weights: one batch each, no training.

    python tools/gradient_shares.py --out work_dirs/gradient_shares
    python tools/gradient_shares.py --trained retinanet=work_dirs/study \\
        --trained faster-rcnn=work_dirs/study_frcnn --sizes 128 800

For every detector (RetinaNet, Faster R-CNN), model shape, weights and
image size, it builds the DS2D2 model of the repository's config with the
authors' DIOR weights, runs one training forward on the first two images
of the synthetic train split (seed 0, the study's generator) resized to the
size, and records, with ``GradientBalanceHook``'s functions
(``split_terms``, ``gradient_norms``), the norm of the task loss's gradient
on the student's FPN levels and each DS2D2 term's norm divided by it (its
share). Shapes: ``tiny`` (the study's models: ResNet-18 layouts of width 6
and 16, 32-channel FPN and heads) and ``real`` (the configs' R-18 student,
R-101 teacher and amplifier, 256 channels, DIOR's 20 classes). Weights:
``random`` (seeded initialisation; the real shapes without their ImageNet
weights, nothing is downloaded) and ``trained`` (the tiny models of a
``tools/study`` output folder given with ``--trained``: seed 0's trained
teacher and amplifier, and the student initialisation every student row
starts from). Every model's anchors follow the image size as in the study
(``synthetic.tiny.scale_to_image``). Also the scale-free variant
(``ScaleFreeDS2D2Distill``, share 1) is run once per case as a check: each
of its terms must have share 1.

Writes ``OUT/gradient_shares.md`` (the table) and
``OUT/gradient_shares.jsonl`` (one case a line). Cases already in that file
are reused (a second invocation with ``--trained`` adds the trained rows);
``--fresh`` measures every case again.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings
from typing import Dict, List, Optional, Sequence

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, TOOLS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.step import quiet_logs  # noqa: E402
from study.methods import CLASSES, DETECTORS, tiny  # noqa: E402
from study.settings import Settings  # noqa: E402
from synthetic.tiny import recipe_image_size, scale_to_image  # noqa: E402

TERMS = ('loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high')
SHAPES = ('tiny', 'real')
SEED = 0


def detectors_of(model) -> list:
    """Student, teacher and (if any) amplifier detector configs."""
    found = [model.architecture, model.teacher]
    if model.get('amplifier') is not None:
        found.append(model.amplifier.detector)
    return found


def case_config(detector: str, shape: str, size: int, data_root: str,
                work_dir: str, trained: Optional[str], scale_free: bool):
    """The DS2D2 config of one case: its model and its train dataset."""
    settings = Settings(detector=detector, image_size=size)
    config = 'scale_free' if scale_free else 'ds2d2'
    cfg = tiny(settings, config, data_root, work_dir, epochs=1)
    if shape == 'real':
        from mmengine.config import Config
        real = Config.fromfile(osp.join(TOOLS, '..', 'configs',
                                        DETECTORS[detector][config]))
        factor = size / recipe_image_size(real)
        for part in detectors_of(real.model):
            part.backbone.init_cfg = None  # nothing to download
            scale_to_image(part, factor)
        cfg.model = real.model
    cfg.model.teacher_ckpt = cfg.model.amplifier_ckpt = None
    if trained:
        runs = osp.join(trained, 'runs', str(SEED))
        cfg.model.teacher_ckpt = last_checkpoint(osp.join(runs, 'teacher'))
        cfg.model.amplifier_ckpt = last_checkpoint(
            osp.join(runs, 'amplifier'))
        cfg.model.architecture.init_cfg = dict(
            type='Pretrained',
            checkpoint=last_checkpoint(osp.join(runs, 'init')))
    return cfg


def last_checkpoint(run_dir: str) -> str:
    """The checkpoint a finished ``tools/study`` run wrote (its
    ``result.json``)."""
    with open(osp.join(run_dir, 'result.json')) as f:
        result = json.load(f)
    if result.get('status') != 'ok':
        raise RuntimeError(f'{run_dir} did not finish: {result}')
    return result['checkpoint']


def first_batch(cfg, count: int = 2) -> dict:
    """The first ``count`` images of the config's train split, through its
    pipeline with NumPy's generator seeded (every case sees the same
    batch)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmdet.registry import DATASETS
    dataset = cfg.train_dataloader.dataset
    dataset = dataset.get('datasets', [dataset])[0]
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dataset)
    np.random.seed(SEED)  # the pipeline's random flip draws from NumPy
    return pseudo_collate([dataset[i] for i in range(count)])


def measure(cfg) -> Dict[str, float]:
    """Task gradient norm on the student's FPN and each term's share."""
    from mmrazor.registry import MODELS

    from ds2d2_mmrazor.engine import gradient_norms, split_terms
    torch.manual_seed(SEED)
    with quiet_logs():
        model = MODELS.build(cfg.model)
        model.init_weights()
    model.train()
    data = model.data_preprocessor(first_batch(cfg), True)
    losses = model(**data, mode='loss')
    feats = list(model.distiller.get_record('fpn', from_student=True))
    norms = gradient_norms(split_terms(losses), feats)
    task = norms.pop('task')
    return dict(task=task, **{k: v / task for k, v in norms.items()})


def case_key(case: dict) -> tuple:
    """What identifies a case."""
    return tuple(case[k] for k in ('detector', 'shape', 'weights', 'size'))


def markdown(results: List[dict], sizes: Sequence[int]) -> str:
    """One table per detector: a row per shape, weights and term."""
    lines = []
    for detector in DETECTORS:
        cases = [r for r in results if r['detector'] == detector]
        if not cases:
            continue
        lines += [f'\n### {detector}\n',
                  '| shape | weights | term | ' +
                  ' | '.join(f'{s} px' for s in sizes) +
                  f' | {sizes[-1]} / {sizes[0]} |',
                  '|---|---|---|' + '---|' * (len(sizes) + 1)]
        keys = sorted({(r['shape'], r['weights']) for r in cases},
                      key=lambda k: (SHAPES.index(k[0]), k[1]))
        for shape, weights in keys:
            by_size = {r['size']: r for r in cases
                       if (r['shape'], r['weights']) == (shape, weights)}
            for term in ('task',) + TERMS:
                values = [by_size.get(s, {}).get(term) for s in sizes]
                cells = ['—' if v is None else f'{v:.3g}' for v in values]
                ends = values[0], values[-1]
                ratio = f'{ends[1] / ends[0]:.3g}' if None not in ends \
                    and ends[0] else '—'
                label = 'task (norm)' if term == 'task' else term
                lines.append(f'| {shape} | {weights} | {label} | ' +
                             ' | '.join(cells) + f' | {ratio} |')
    deviation = max((abs(v - 1) for r in results
                     for v in r['scale_free'].values()), default=0.0)
    lines.append(f'\nScale-free variant (share 1), every case: each term\'s '
                 f'share is 1 within {deviation:.1e}.')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='work_dirs/gradient_shares')
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[128, 256, 512, 800])
    parser.add_argument('--detectors', nargs='+', default=list(DETECTORS),
                        choices=list(DETECTORS))
    parser.add_argument('--shapes', nargs='+', default=list(SHAPES),
                        choices=SHAPES)
    parser.add_argument('--trained', action='append', default=[],
                        metavar='DETECTOR=STUDY_DIR',
                        help='a tools/study output folder of that '
                        "detector, whose seed-0 models are the 'trained' "
                        'weights (tiny shape only)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--fresh', action='store_true',
                        help='measure again the cases OUT already holds')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    warnings.filterwarnings('ignore')
    torch.set_num_threads(args.threads)
    import importlib

    from mmdet.utils import register_all_modules

    from synthetic.data import make_synthetic_dior
    importlib.import_module('ds2d2_mmrazor')  # registers its modules
    register_all_modules(init_default_scope=False)
    trained = dict(item.split('=', 1) for item in args.trained)
    unknown = set(trained) - set(DETECTORS)
    if unknown:
        raise ValueError(f'--trained names {sorted(unknown)}: expected '
                         f'one of {list(DETECTORS)}')
    os.makedirs(args.out, exist_ok=True)
    settings = Settings()
    data_root = osp.join(args.out, 'data') + '/'
    if not osp.isfile(osp.join(data_root, 'ImageSets', 'Main', 'test.txt')):
        make_synthetic_dior(data_root, num_trainval=settings.num_trainval,
                            num_test=settings.num_test,
                            image_size=settings.image_size, classes=CLASSES,
                            seed=SEED)
    log = osp.join(args.out, 'gradient_shares.jsonl')
    if args.fresh or not osp.isfile(log):
        open(log, 'w').close()
    with open(log) as f:
        results = [json.loads(line) for line in f if line.strip()]
    done = {case_key(r) for r in results}
    for detector in args.detectors:
        weights = [('random', None)]
        if detector in trained:
            weights.append(('trained', trained[detector]))
        for shape in args.shapes:
            for label, study in weights:
                if shape == 'real' and study:
                    continue  # the study trains tiny models only
                for size in args.sizes:
                    start = time.time()
                    case = dict(detector=detector, shape=shape,
                                weights=label, size=size)
                    if case_key(case) in done:
                        continue
                    cfg = case_config(detector, shape, size, data_root,
                                      args.out, study, False)
                    case.update(measure(cfg))
                    check = measure(case_config(detector, shape, size,
                                                data_root, args.out, study,
                                                True))
                    case['scale_free'] = {k: check[k] for k in TERMS}
                    case['seconds'] = round(time.time() - start, 1)
                    results.append(case)
                    with open(log, 'a') as f:
                        f.write(json.dumps(case) + '\n')
                    print(json.dumps(case), flush=True)
    table = markdown(results, args.sizes)
    with open(osp.join(args.out, 'gradient_shares.md'), 'w') as f:
        f.write('Task: the norm of the task loss\'s gradient on the '
                'student\'s FPN levels; terms: their norm / the task\'s, '
                "at the authors' DIOR weights.\n" + table)
    print(table)
    return table


if __name__ == '__main__':
    main()
