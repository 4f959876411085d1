"""Train any stage of DS2D2 (teacher, amplifier, student) from a config.

Single process:
    python tools/train.py configs/ds2d2_retina_r18_r101_dior.py
Several GPUs on one machine:
    torchrun --nproc_per_node=4 tools/train.py CONFIG --launcher pytorch
The same as `mim train mmrazor CONFIG`, with this package imported first.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.runner import Runner

# importing ds2d2_mmrazor registers its modules and allows checkpoints
from ds2d2_mmrazor import compat


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in work-dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr to the total batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    # torch >= 2.0's launcher passes --local-rank, older ones --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path: str) -> Config:
    """``Config.fromfile``, saying what to install for an oriented-box
    config on a stack without MMRotate."""
    try:
        return Config.fromfile(path)
    except ModuleNotFoundError as e:
        if 'mmrotate' not in str(e):
            raise
        raise ModuleNotFoundError(
            f'{path} is an oriented-box config and needs MMRotate, which '
            'is not installed: `make install` installs the full stack '
            '(mmdet 3.1.0, mmcv 2.0.1, mmrotate 1.0.0rc1), or `pip install '
            '-e .[rotated]`; MMRotate 1.0.0rc1 does not run with '
            f'MMDetection 3.3 ({e})') from e


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if get_device() == 'cpu':
            raise ValueError(
                '--amp needs a GPU (or NPU / MLU / MUSA): MMEngine\'s '
                'AmpOptimWrapper does not run on CPU; train without --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    cfg.resume = args.resume
    return cfg


def main(argv=None) -> None:
    cfg = build_config(parse_args(argv))
    compat.setup_cpu_distributed(cfg)  # torchrun without CUDA
    Runner.from_cfg(cfg).train()
    compat.close_distributed()  # all ranks finish together


if __name__ == '__main__':
    main()
