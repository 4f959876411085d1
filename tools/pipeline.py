"""Run the DS2D2 recipe stage by stage, handing checkpoints along.

    python tools/pipeline.py                      # RetinaNet on DIOR
    python tools/pipeline.py --gpus 4             # each stage on 4 GPUs
    python tools/pipeline.py --dry-run            # only print the commands

Stages: 1. the teacher, 2. the high-frequency amplifier (from the teacher's
checkpoint), 3. the DS2D2 student (from both), and optionally the
undistilled baseline student. Each stage is an ordinary
``tools/train.py`` run in ``WORK_DIR/<stage>``; the command is printed
before it runs. Re-running the pipeline skips finished stages and resumes an
interrupted one from its last checkpoint (``--resume``), so a crash costs at
most the work since the last checkpoint.
"""
import argparse
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

TOOLS = osp.dirname(osp.abspath(__file__))
DONE = 'pipeline_done'  # written in a stage's work dir when it finished


@dataclass
class Stage:
    """One training run of the recipe.

    Args:
        name (str): Stage name, also its work-dir name.
        config (str): Config file.
        inputs (dict): Config field -> name of the stage whose final
            checkpoint it takes, e.g. ``{'model.teacher_ckpt': 'teacher'}``.
    """
    name: str
    config: str
    inputs: Dict[str, str] = field(default_factory=dict)


def recipe(teacher: str, amplifier: str, student: str,
           baseline: Optional[str] = None) -> List[Stage]:
    """The DS2D2 stages for a teacher / amplifier / student config trio."""
    stages = [
        Stage('teacher', teacher),
        Stage('amplifier', amplifier, {'model.teacher_ckpt': 'teacher'}),
        Stage('student', student, {
            'model.teacher_ckpt': 'teacher',
            'model.amplifier_ckpt': 'amplifier'
        }),
    ]
    if baseline:
        stages.append(Stage('baseline', baseline))
    return stages


def final_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a finished stage left, or None if it did not finish."""
    marker = osp.join(work_dir, DONE)
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        return f.read().strip()


def command(stage: Stage, work_dir: str, ckpts: Dict[str, str],
            gpus: int = 1, extra: Optional[List[str]] = None) -> List[str]:
    """The command line that trains ``stage`` (resuming if it can)."""
    train = osp.join(TOOLS, 'train.py')
    if gpus > 1:
        cmd = [sys.executable, '-m', 'torch.distributed.run',
               f'--nproc_per_node={gpus}', train, stage.config,
               '--launcher', 'pytorch']
    else:
        cmd = [sys.executable, train, stage.config]
    cmd += ['--work-dir', work_dir]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    options = [f'{key}={ckpts[source]}'
               for key, source in stage.inputs.items()]
    options += extra or []
    if options:
        cmd += ['--cfg-options'] + options
    return cmd


def run(stages: List[Stage], work_root: str, gpus: int = 1,
        dry_run: bool = False,
        cfg_options: Optional[List[str]] = None) -> Dict[str, dict]:
    """Run the stages in order; return per stage its checkpoint and time.

    Raises:
        RuntimeError: If a stage's command fails (the later stages do not
            run; the pipeline can be re-run to resume).
    """
    ckpts: Dict[str, str] = {}
    results: Dict[str, dict] = {}
    for number, stage in enumerate(stages, 1):
        work_dir = osp.join(work_root, stage.name)
        done = final_checkpoint(work_dir)
        if done:
            print(f'[{number}/{len(stages)}] {stage.name}: done earlier, '
                  f'{done}')
            ckpts[stage.name] = done
            results[stage.name] = dict(checkpoint=done, seconds=None,
                                       work_dir=work_dir)
            continue
        cmd = command(stage, work_dir, ckpts, gpus, cfg_options)
        print(f'[{number}/{len(stages)}] {stage.name}:\n  '
              + ' '.join(shlex.quote(c) for c in cmd), flush=True)
        if dry_run:
            ckpts[stage.name] = osp.join(work_dir, '<final checkpoint>')
            continue
        start = time.time()
        if subprocess.run(cmd).returncode != 0:
            raise RuntimeError(
                f'stage {stage.name!r} failed; fix the cause and run the '
                'same pipeline command again: it resumes from the last '
                'checkpoint of this stage')
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        with open(osp.join(work_dir, DONE), 'w') as f:
            f.write(ckpt + '\n')
        ckpts[stage.name] = ckpt
        results[stage.name] = dict(checkpoint=ckpt, work_dir=work_dir,
                                   seconds=time.time() - start)
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    configs = osp.join(osp.dirname(TOOLS), 'configs')
    parser.add_argument(
        '--teacher',
        default=osp.join(configs, 'retinanet_r101_fpn_2x_dior.py'))
    parser.add_argument(
        '--amplifier', default=osp.join(
            configs, 'ds2d2_amplifier_retinanet_r101_fpn_2x_dior.py'))
    parser.add_argument(
        '--student', default=osp.join(configs,
                                      'ds2d2_retina_r18_r101_dior.py'))
    parser.add_argument(
        '--baseline', default=None,
        help='also train this undistilled student config, e.g. '
        'configs/retinanet_r18_fpn_2x_dior.py')
    parser.add_argument('--work-dir', default='work_dirs/ds2d2_pipeline')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs per stage (torchrun when > 1)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands without running them')
    parser.add_argument('--cfg-options', nargs='+', default=None,
                        help='passed to every stage, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    stages = recipe(args.teacher, args.amplifier, args.student,
                    args.baseline)
    os.makedirs(args.work_dir, exist_ok=True)
    return run(stages, args.work_dir, args.gpus, args.dry_run,
               args.cfg_options)


if __name__ == '__main__':
    main()
