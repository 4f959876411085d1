"""Convert DIOR, DIOR-R or DOTA split patches to COCO json.

For MMDetection's CocoDataset and CocoMetric (configs/_base_/datasets/
dior_coco.py, dota_coco.py). The files are read by the dataset loaders' own
readers, so bad input stops the conversion with the loaders' errors.

    # DIOR, horizontal boxes: trainval (train + val) and test
    python tools/convert_to_coco.py dior data/DIOR --split train val \\
        --out data/DIOR/coco/trainval.json
    python tools/convert_to_coco.py dior data/DIOR --split test \\
        --out data/DIOR/coco/test.json
    # DIOR-R, oriented boxes (polygon in 'segmentation', enclosing 'bbox')
    python tools/convert_to_coco.py dior-obb data/DIOR --split test \\
        --out data/DIOR/coco/test_obb.json
    # DOTA patches of MMRotate's img_split (ROOT/<split>/annfiles/*.txt)
    python tools/convert_to_coco.py dota data/split_ss_dota --split train \\
        --out data/split_ss_dota/train/train.json

Image file names in the json are relative to the split's image folder
(JPEGImages-trainval / JPEGImages-test, or <split>/images).
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.fileio import dump

from ds2d2_mmrazor.datasets import dior_to_coco, dota_to_coco


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument(
        'format', choices=['dior', 'dior-obb', 'dota'],
        help='dior: Annotations/Horizontal Bounding Boxes; dior-obb: '
        'Annotations/Oriented Bounding Boxes (DIOR-R); dota: split patches')
    parser.add_argument(
        'root', help='the DIOR root, or the root of the DOTA split patches')
    parser.add_argument(
        '--split', nargs='+', default=['test'],
        help='DIOR: splits of ImageSets/Main merged into one file (e.g. '
        'train val); DOTA: one folder under root (e.g. train). Default: test')
    parser.add_argument('--out', required=True, help='the json to write')
    parser.add_argument(
        '--patch-size', type=int, default=1024,
        help='DOTA: the patches\' size (img_split\'s). Default: 1024')
    parser.add_argument(
        '--diff-thr', type=int, default=100,
        help='DOTA: objects with a difficulty above it become iscrowd '
        '(ignored). Default: 100, none, as MMRotate\'s DOTADataset')
    args = parser.parse_args(argv)
    if args.format == 'dota' and len(args.split) != 1:
        parser.error('dota: --split takes one split folder (its patches '
                     'have their own image folder)')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.format == 'dota':
        coco = dota_to_coco(osp.join(args.root, args.split[0]),
                            (args.patch_size, args.patch_size),
                            args.diff_thr)
    else:
        coco = dior_to_coco(args.root, args.split,
                            oriented=args.format == 'dior-obb')
    dump(coco, args.out)
    print(f'wrote {len(coco["images"])} images and '
          f'{len(coco["annotations"])} objects to {args.out}')


if __name__ == '__main__':
    main()
