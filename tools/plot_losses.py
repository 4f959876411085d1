"""Plot task loss and distillation terms of training runs over iterations.

    python tools/plot_losses.py \
        work_dirs/ds2d2_retina_r18_r101_dior/*/vis_data/scalars.json \
        --out ds2d2_losses.png [--names DS2D2]

Reads MMEngine's ``vis_data/scalars.json`` of each run (validation lines
are skipped) and draws one subplot per run, log y-axis: the task loss (the
``student.*`` losses of a distillation run, else ``loss``) and every
``distill.*`` term. Runs are named after their work dir unless --names is
given.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from ds2d2_mmrazor.visualization import plot_losses


def run_name(path: str) -> str:
    """``work_dirs/NAME/TIMESTAMP/vis_data/scalars.json`` -> ``NAME``."""
    parts = osp.normpath(osp.abspath(path)).split(os.sep)
    if len(parts) >= 4 and parts[-2] == 'vis_data':
        return parts[-4]
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scalars', nargs='+',
                        help="MMEngine's vis_data/scalars.json, one per run")
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--names', nargs='+',
                        help='run names, one per file (default: the work '
                        'dir names)')
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.scalars):
        parser.error(f'--names gives {len(args.names)} names for '
                     f'{len(args.scalars)} files')
    return args


def main(argv: Optional[List[str]] = None) -> str:
    """Write the plot; return its path."""
    args = parse_args(argv)
    names = args.names or [run_name(p) for p in args.scalars]
    if len(set(names)) < len(names):  # same work dir, several runs
        names = [f'{n} ({p})' for n, p in zip(names, args.scalars)]
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    plot_losses(dict(zip(names, args.scalars)), args.out)
    print(f'{args.out}: {", ".join(names)}')
    return args.out


if __name__ == '__main__':
    main()
