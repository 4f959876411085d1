"""The built-in demo: DS2D2 on a small synthetic remote-sensing dataset.

    make demo                 # or: python tools/demo.py --out work_dirs/demo

On a 2-core CPU in under 10 minutes, with tiny models:
1. writes a synthetic dataset in DIOR's on-disk format (``OUT/data``);
2. writes tiny versions of the repository configs (``OUT/configs``): the
   same recipe code, narrow ResNet-18 backbones, 128 px images;
3. trains, through ``tools/pipeline.py``: the teacher, the high-frequency
   amplifier, the DS2D2 student, the undistilled student (baseline) and
   MMRazor's PKD on the same teacher / student pair, each evaluated on the
   test split with COCO bbox AP;
4. prints a table (model, parameters, AP50, mAP, training time) and writes
   pictures to ``OUT/pictures``: loss curves of every stage, the wavelet
   bands of teacher and student features, the DISW map of a test image and
   the detections of teacher / baseline / DS2D2 student side by side.
Re-running skips the stages that finished.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))

import convert_to_student  # noqa: E402
import pipeline  # noqa: E402
import plot_losses  # noqa: E402
import visualize  # noqa: E402

CLASSES = ('vehicle', 'ship', 'storagetank', 'airplane', 'tenniscourt')
# stage name -> (repository config, checkpoints it takes, table label)
STAGES = {
    'teacher': ('retinanet_r101_fpn_2x_dior.py', {}, 'teacher (R-101 recipe)'),
    'amplifier': ('ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py', {
        'model.teacher_ckpt': 'teacher'
    }, 'HF amplifier'),
    'ds2d2': ('ds2d2_retina_r18_r101_dior.py', {
        'model.teacher_ckpt': 'teacher',
        'model.amplifier_ckpt': 'amplifier'
    }, 'student + DS2D2'),
    'baseline': ('retinanet_r18_fpn_2x_dior.py', {}, 'student alone'),
    'pkd': ('peers/pkd_retina_r18_r101_dior.py', {
        'model.teacher_ckpt': 'teacher'
    }, 'student + PKD'),
}


def write_configs(out: str, data_root: str, epochs: int,
                  teacher_epochs: int, image_size: int) -> Dict[str, str]:
    """Dump the tiny config of every stage; return stage -> path."""
    from ds2d2_mmrazor.tiny import tiny_config
    paths = {}
    os.makedirs(osp.join(out, 'configs'), exist_ok=True)
    for name, (config, _, _) in STAGES.items():
        cfg = tiny_config(
            osp.join(REPO, 'configs', config), data_root,
            osp.join(out, name), image_size=image_size,
            max_epochs=teacher_epochs if name == 'teacher' else epochs,
            classes=CLASSES, teacher_width=32, student_width=8, channels=32,
            batch_size=4, lr=0.01)
        # the same for every stage: tiny models at this lr need clipping to
        # stay stable (the distillation terms add large early gradients)
        cfg.optim_wrapper.clip_grad = dict(max_norm=35, norm_type=2)
        cfg.randomness = dict(seed=0)
        cfg.log_level = 'WARNING'
        paths[name] = osp.join(out, 'configs', f'{name}.py')
        cfg.dump(paths[name])
    return paths


def scalar_logs(work_dir: str) -> List[str]:
    """MMEngine's scalars.json files of a run, oldest first."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))


def evaluation(work_dir: str) -> Dict[str, float]:
    """The last COCO evaluation a run logged."""
    metrics: Dict[str, float] = {}
    for log in scalar_logs(work_dir):
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if 'coco/bbox_mAP' in record:
                    metrics = record
    return metrics


def student_params(config: str) -> int:
    """Parameters of the detector users deploy (the student)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    model_cfg = Config.fromfile(config).model
    model_cfg = model_cfg.get('architecture', model_cfg.get('detector',
                                                              model_cfg))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    return sum(p.numel() for p in model.parameters())


def table(rows: List[List[str]]) -> str:
    header = ['model', 'params', 'AP50', 'mAP', 'train time']
    widths = [max(len(str(r[i])) for r in rows + [header])
              for i in range(len(header))]
    lines = ['  '.join(h.ljust(w) for h, w in zip(header, widths)),
             '  '.join('-' * w for w in widths)]
    lines += ['  '.join(str(c).ljust(w) for c, w in zip(r, widths))
              for r in rows]
    return '\n'.join(lines)


def pictures(out: str, data_root: str, configs: Dict[str, str],
             results: Dict[str, dict]) -> List[str]:
    """Loss curves, wavelet bands, DISW and detections; return the files."""
    pics = osp.join(out, 'pictures')
    os.makedirs(pics, exist_ok=True)
    written = []
    for name in STAGES:
        target = osp.join(pics, f'losses_{name}.png')
        plot_losses.main(
            [scalar_logs(results[name]['work_dir'])[-1], '--out', target])
        written.append(target)
    # the distilled checkpoint as a plain student detector
    student_ckpt = osp.join(out, 'ds2d2_student.pth')
    convert_to_student.main(
        [results['ds2d2']['checkpoint'], '--out', student_ckpt])
    with open(osp.join(data_root, 'ImageSets', 'Main', 'test.txt')) as f:
        image_id = f.read().split()[0]
    visualize.main([
        configs['baseline'], student_ckpt,
        osp.join(data_root, 'JPEGImages-test', f'{image_id}.jpg'),
        '--out-dir', pics,
        '--gt-xml', osp.join(data_root, 'Annotations',
                             'Horizontal Bounding Boxes', f'{image_id}.xml'),
        '--teacher-config', configs['teacher'],
        '--teacher-ckpt', results['teacher']['checkpoint'],
        '--baseline-config', configs['baseline'],
        '--baseline-ckpt', results['baseline']['checkpoint'],
        '--student-name', 'DS2D2 student',
    ])
    return sorted(set(written + glob.glob(osp.join(pics, '*.png'))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--epochs', type=int, default=36,
                        help='epochs of the amplifier and the students')
    parser.add_argument('--teacher-epochs', type=int, default=None,
                        help='epochs of the teacher (default: twice '
                        '--epochs, so that the wider teacher is the better '
                        'detector, as it is on DIOR)')
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--num-trainval', type=int, default=64)
    parser.add_argument('--num-test', type=int, default=16)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    from ds2d2_mmrazor.datasets.synthetic import make_synthetic_dior
    start = time.time()
    data_root = osp.join(args.out, 'data') + '/'
    if not osp.isfile(osp.join(data_root, 'ImageSets', 'Main', 'test.txt')):
        make_synthetic_dior(
            data_root, num_trainval=args.num_trainval,
            num_test=args.num_test, image_size=args.image_size,
            classes=CLASSES, seed=0)
    print(f'data: {data_root}')
    configs = write_configs(args.out, data_root, args.epochs,
                            args.teacher_epochs or 2 * args.epochs,
                            args.image_size)
    stages = [
        pipeline.Stage(name, configs[name], inputs)
        for name, (_, inputs, _) in STAGES.items()
    ]
    results = pipeline.run(stages, args.out)
    rows = []
    for name, (_, _, label) in STAGES.items():
        if name == 'amplifier':
            continue  # not a detector anyone deploys
        metrics = evaluation(results[name]['work_dir'])
        seconds = results[name]['seconds']
        rows.append([
            label, f'{student_params(configs[name]) / 1e6:.2f} M',
            f"{metrics.get('coco/bbox_mAP_50', float('nan')):.3f}",
            f"{metrics.get('coco/bbox_mAP', float('nan')):.3f}",
            'earlier run' if seconds is None else f'{seconds:.0f} s'
        ])
    written = pictures(args.out, data_root, configs, results)
    report = table(rows)
    print('\n' + report)
    print('\npictures:\n  ' + '\n  '.join(written))
    print(f'\ndemo finished in {time.time() - start:.0f} s; everything is '
          f'in {args.out}')
    return report


if __name__ == '__main__':
    main()
