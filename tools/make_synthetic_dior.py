"""Write a small synthetic remote-sensing dataset in DIOR's released layout.

    python tools/make_synthetic_dior.py data/synthetic_dior
    python tools/make_synthetic_dior.py OUT_DIR --num-trainval 64 \\
        --num-test 16 --image-size 128 --seed 0

Horizontal (DIOR) and oriented (DIOR-R) boxes of vehicles, ships, storage
tanks, airplanes and tennis courts; see
``synthetic.data.make_synthetic_dior``. OUT_DIR must not
exist (or be empty).
"""
import argparse
from typing import List, Optional

from synthetic.data import make_synthetic_dior


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('out_dir', help='folder to create')
    parser.add_argument('--num-trainval', type=int, default=64,
                        help='trainval images (split ~50/50 into train/val)')
    parser.add_argument('--num-test', type=int, default=16,
                        help='test images')
    parser.add_argument('--image-size', type=int, default=128,
                        help='side of the square images (>= 64)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser.parse_args(argv)


def format_summary(summary: dict) -> str:
    """The summary of ``make_synthetic_dior`` as a short table."""
    lines = [f'{"split":<14}{"images":>8}{"objects":>9}']
    for split, images in summary['images'].items():
        lines.append(
            f'{split:<14}{images:>8}{summary["objects"][split]:>9}')
    lines.append(f'{"class":<14}{"":>8}{"objects":>9}')
    for name, count in summary['objects_per_class'].items():
        lines.append(f'{name:<14}{"":>8}{count:>9}')
    per_image = summary['objects_per_image']
    lines.append(f'objects per image: min {per_image["min"]}, mean '
                 f'{per_image["mean"]:.1f}, max {per_image["max"]}; '
                 f'{summary["empty_images"]} images without objects')
    lines.append(f'written to {summary["out_dir"]}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        summary = make_synthetic_dior(
            args.out_dir, num_trainval=args.num_trainval,
            num_test=args.num_test, image_size=args.image_size,
            seed=args.seed)
    except (FileExistsError, ValueError) as error:  # the argument checks
        raise SystemExit(f'make_synthetic_dior.py: {error}')
    print(format_summary(summary))
    return summary


if __name__ == '__main__':
    main()
