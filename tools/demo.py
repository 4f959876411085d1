"""The built-in demo: DS2D2 on a small synthetic remote-sensing dataset.

    make demo                 # or: python tools/demo.py --out work_dirs/demo

Seed 0 of ``tools/study`` on a 2-core CPU in under 10 minutes (the
study's settings, but the students train half its epochs), with tiny
models whose anchors fit the small images:
1. writes a synthetic dataset in DIOR's on-disk format (``OUT/data``):
   train, val and test splits, and a separate pool for pretraining;
2. trains on train, through ``tools/train.py``: the pretraining of a
   student-width and a teacher-width detector on the pool, the teacher
   (wider, trained longer), the high-frequency amplifier, then on one
   student schedule, from one initialisation, the student alone, DS2D2,
   CrossKD and MMRazor's CWD on the same teacher;
3. evaluates each on val and on test (COCO AP);
4. prints a table (model, parameters, test AP50 / mAP, val AP50, training
   time) with the teacher-student gap, and writes pictures to
   ``OUT/pictures``: loss curves of every stage, the wavelet bands of
   teacher and student features, the DISW map of a test image and the
   ground truth beside the detections of teacher / student alone / DS2D2.
Re-running skips the runs that finished. One seed is a demonstration; the
mean and paired differences over seeds are ``tools/study``'s job
(README, Results).
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time
import warnings
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))

import convert_to_student  # noqa: E402
import plot_losses  # noqa: E402
import study  # noqa: E402
from study import report as study_report  # noqa: E402
import visualize  # noqa: E402

# run -> table label (the amplifier is trained, not deployed)
ROWS = {
    'teacher': 'teacher (R-101 recipe)',
    'baseline': 'student alone',
    'ds2d2': 'student + DS2D2',
    'crosskd': 'student + CrossKD',
    'cwd': 'student + CWD',
}
RUNS = ['teacher', 'amplifier', 'baseline', 'ds2d2', 'crosskd', 'cwd']
#: half the study's student schedule, so that the demo takes 10 minutes;
#: everything else is the study's
DEMO_EPOCHS = 24


def table(rows: List[List[str]]) -> str:
    header = ['model', 'params', 'test AP50', 'test mAP', 'val AP50',
              'train time']
    widths = [max(len(str(r[i])) for r in rows + [header])
              for i in range(len(header))]
    lines = ['  '.join(h.ljust(w) for h, w in zip(header, widths)),
             '  '.join('-' * w for w in widths)]
    lines += ['  '.join(str(c).ljust(w) for c, w in zip(r, widths))
              for r in rows]
    return '\n'.join(lines)


def pictures(out: str, data_root: str, run_dir: Dict[str, str],
             results: Dict[str, dict]) -> List[str]:
    """Loss curves, wavelet bands, DISW and detections; return the files."""
    pics = osp.join(out, 'pictures')
    os.makedirs(pics, exist_ok=True)
    config = {name: osp.join(run_dir[name], 'config.py') for name in RUNS}
    for name in RUNS:
        plot_losses.main([study.scalar_logs(run_dir[name])[-1], '--out',
                          osp.join(pics, f'losses_{name}.png')])
    # the distilled checkpoint as a plain student detector
    student_ckpt = osp.join(out, 'ds2d2_student.pth')
    convert_to_student.main(
        [results['ds2d2']['checkpoint'], '--out', student_ckpt])
    # the test image with the most objects
    xml_dir = osp.join(data_root, 'Annotations', 'Horizontal Bounding Boxes')
    with open(osp.join(data_root, 'ImageSets', 'Main', 'test.txt')) as f:
        ids = f.read().split()
    image_id = max(ids, key=lambda i: (len(visualize.read_xml_boxes(
        osp.join(xml_dir, f'{i}.xml'))), i))
    visualize.main([
        config['baseline'], student_ckpt,
        osp.join(data_root, 'JPEGImages-test', f'{image_id}.jpg'),
        '--out-dir', pics,
        '--gt-xml', osp.join(xml_dir, f'{image_id}.xml'),
        '--teacher-config', config['teacher'],
        '--teacher-ckpt', results['teacher']['checkpoint'],
        '--baseline-config', config['baseline'],
        '--baseline-ckpt', results['baseline']['checkpoint'],
        '--student-name', 'DS2D2 student',
    ])
    return sorted(glob.glob(osp.join(pics, '*.png')))


def parse_args(argv=None) -> argparse.Namespace:
    d = study.Settings()
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--epochs', type=int, default=DEMO_EPOCHS,
                        help='epochs of the amplifier and the students (the '
                        f'study: {d.epochs})')
    parser.add_argument('--teacher-epochs', type=int,
                        default=d.teacher_epochs)
    parser.add_argument('--image-size', type=int, default=d.image_size)
    parser.add_argument('--num-trainval', type=int, default=d.num_trainval,
                        help='half of them train, half val')
    parser.add_argument('--num-test', type=int, default=d.num_test)
    parser.add_argument('--pretrain-images', type=int,
                        default=d.pretrain_images,
                        help='images of the separate pretraining pool')
    parser.add_argument('--pretrain-epochs', type=int,
                        default=d.pretrain_epochs)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    # mmengine / mmcv import pkg_resources: one warning per evaluation
    warnings.filterwarnings('ignore', 'pkg_resources is deprecated')
    args = parse_args(argv)
    start = time.time()
    settings = study.Settings(
        image_size=args.image_size, num_trainval=args.num_trainval,
        num_test=args.num_test, teacher_epochs=args.teacher_epochs,
        epochs=args.epochs, pretrain_images=args.pretrain_images,
        pretrain_epochs=args.pretrain_epochs, seeds=[args.seed],
        methods=[r for r in RUNS if r not in ('teacher', 'amplifier')])
    # two trainings at a time, one thread each: as fast as one with two
    # threads on 2 cores, and the same numbers as the study's seed
    demo = study.Study(settings, args.out, jobs=2, threads=1)
    data_root = demo.data_root(args.seed)
    print(f'data: {data_root}')
    demo.run_all(study.plan(settings, demo.rows))
    keys = {name: f'{args.seed}/{name}' for name in RUNS}
    results = {name: demo.results[key] for name, key in keys.items()}
    failed = {n: r['reason'] for n, r in results.items()
              if r['status'] != 'ok'}
    if failed:
        raise RuntimeError(f'runs failed: {failed}')
    rows = []
    for name, label in ROWS.items():
        result = results[name]
        config = osp.join(demo.run_dir(keys[name]), 'config.py')
        rows.append([
            label, f'{study_report.params(config) / 1e6:.2f} M',
            f"{result['test']['AP50']:.3f}", f"{result['test']['mAP']:.3f}",
            f"{result['val']['AP50']:.3f}",
            f"{result['seconds']:.0f} s"
            if keys[name] in demo.trained else 'earlier run'
        ])
    test = {name: results[name]['test']['AP50'] for name in ROWS}
    written = pictures(args.out, data_root,
                       {name: demo.run_dir(key) for name, key in keys.items()},
                       results)
    gains = '; '.join(
        f'{ROWS[n].split(" + ")[1]} {test[n] - test["baseline"]:+.3f}'
        for n in ('ds2d2', 'crosskd', 'cwd'))
    report = table(rows) + (
        f'\n\ntest AP50, teacher - student alone: '
        f'{test["teacher"] - test["baseline"]:+.3f} (student alone / '
        f'teacher: {test["baseline"] / max(test["teacher"], 1e-9):.2f}); '
        f'each method - student alone: {gains}.\n'
        f'One seed on {settings.num_test} test images: a difference of a '
        'point or two between two rows is within what one seed can tell; '
        "the README's study gives the paired differences over 5 seeds "
        'with their intervals.')
    print('\n' + report)
    print('\npictures:\n  ' + '\n  '.join(written))
    print(f'\ndemo finished in {time.time() - start:.0f} s; everything is '
          f'in {args.out}')
    return report


if __name__ == '__main__':
    main()
