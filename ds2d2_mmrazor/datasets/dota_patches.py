"""The files of DOTA v1.0 split patches (MMRotate's ``img_split``): their
classes, listing, annotation reading and image checks.

Needs no MMRotate: :class:`~ds2d2_mmrazor.datasets.DOTAPatchDataset` (which
does) and the COCO conversion of the horizontal-box configs both use it.
"""
import glob
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

from mmengine.fileio import get_text
from PIL import Image

from .annotations import read_dota_txt

#: DOTA v1.0's classes in label order, as MMRotate's ``DOTADataset``
#: (tests/test_datasets/test_dota.py compares them).
DOTA_CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
                'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
                'basketball-court', 'storage-tank', 'soccer-ball-field',
                'roundabout', 'harbor', 'swimming-pool', 'helicopter')

#: How docs/datasets.md ("DOTA v1.0") splits the scenes; quoted by the error
#: for a raw (unsplit) label file.
SPLIT_COMMAND = '''\
SPLIT=$(python -c "import mmrotate, os.path as p; print(p.join(p.dirname(mmrotate.__file__), '.mim/tools/data/dota/split/img_split.py'))")
for split in train val; do
  python $SPLIT --nproc 8 --img-dirs data/DOTA/$split/images/ \\
      --ann-dirs data/DOTA/$split/labelTxt/ --sizes 1024 --gaps 200 \\
      --rates 1.0 --padding-value 104 116 124 \\
      --save-dir data/split_ss_dota/$split/ --save-ext .png
done'''  # noqa: E501

#: The header lines of a raw DOTA label file (``labelTxt/``), which
#: ``img_split`` drops: ``imagesource:GoogleEarth``, ``gsd:0.146`` (or
#: ``gsd:null``).
RAW_HEADER = re.compile(r'\s*(imagesource|gsd)\s*:')

#: The most problem files an error lists (it counts them all).
MAX_LISTED = 10


def list_patches(ann_dir: str) -> List[str]:
    """The patch ids of a split's annotation folder, sorted.

    Args:
        ann_dir (str): The ``annfiles`` folder (one ``<patch id>.txt`` a
            patch, the image being ``images/<patch id>.png``).

    Returns:
        list[str]: The patch ids.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If it has no ``.txt`` file.
    """
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(
            f'DOTA annotation folder {ann_dir!r} not found: split DOTA with '
            "MMRotate's tools/data/dota/split/img_split.py, or set data_root "
            'to where the split is')
    names = sorted(glob.glob(osp.join(ann_dir, '*.txt')))
    if not names:
        raise ValueError(f'DOTA annotation folder {ann_dir!r} has no .txt '
                         'file')
    return [osp.splitext(osp.basename(name))[0] for name in names]


def raw_header(text: str) -> Optional[Tuple[int, str]]:
    """The raw DOTA header line that opens a label file, if any.

    Args:
        text (str): The content of a label file.

    Returns:
        tuple[int, str] | None: ``(line number, line)`` if the first
        non-blank line is ``imagesource:...`` or ``gsd:...``, else None.
    """
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            return (number, line.strip()) if RAW_HEADER.match(line) else None
    return None


def read_patch_txt(txt_path: str, classes: Sequence[str],
                   img_shape: Tuple[int, int], diff_thr: int) -> List[dict]:
    """Read one patch's annotation file, as :func:`read_dota_txt` does.

    A raw DOTA label file (a scene's, not yet split) is told apart from a
    malformed patch file by its header; the file is read again only if
    :func:`read_dota_txt` fails.

    Args:
        txt_path (str): The annotation file (``annfiles/<patch id>.txt``).
        classes (Sequence[str]): The dataset classes, in label order.
        img_shape (tuple[int, int]): Patch ``(height, width)``.
        diff_thr (int): Objects with a difficulty above it are ignored.

    Returns:
        list[dict]: One dict an object: ``bbox`` (8 floats),
        ``bbox_label``, ``ignore_flag``.

    Raises:
        ValueError: As :func:`read_dota_txt`; for a raw label file, one
            naming the file and its header line and giving the command that
            splits the scenes into patches.
    """
    try:
        return read_dota_txt(txt_path, classes, img_shape, diff_thr)
    except ValueError:
        if not osp.isfile(txt_path):  # read_dota_txt's 'not found'
            raise
        header = raw_header(get_text(txt_path))
        if header is None:
            raise
        number, line = header
        raise ValueError(
            f'{txt_path}: line {number} {line!r} is the header of a raw DOTA '
            'label file (labelTxt/): the scenes are not split into patches. '
            "Split them first with MMRotate's img_split.py, as "
            'docs/datasets.md ("DOTA v1.0") does:\n'
            f'{SPLIT_COMMAND}\n'
            "then set ann_file to the split's annfiles/ folder and "
            "data_prefix['img_path'] to its images/ folder") from None


def _listed(lines: Sequence[str]) -> str:
    shown = ''.join(f'\n  {line}' for line in lines[:MAX_LISTED])
    more = len(lines) - MAX_LISTED
    return shown + (f'\n  ... and {more} more' if more > 0 else '')


def check_patch_images(img_paths: Sequence[str],
                       img_shape: Tuple[int, int]) -> List[Tuple[int, int]]:
    """Check every patch image and return its size.

    A patch is at most ``img_shape``, the size the split was cut with;
    patches at a scene's border are smaller when ``img_split`` ran with
    ``--no-padding``, and keep their own size.

    Only each image's header is read (PIL opens images lazily), not its
    pixels: about 30 ms a 1000 patches with the files in the page cache
    (under a second for DOTA's ~20k train patches; decoding them would
    take ~50 ms a patch), and one small read a file from a cold disk.

    Args:
        img_paths (Sequence[str]): The patch images.
        img_shape (tuple[int, int]): The split's patch ``(height, width)``,
            which no patch may exceed.

    Returns:
        list[tuple[int, int]]: Each image's ``(height, width)``.

    Raises:
        FileNotFoundError: If images are missing. The message counts them,
            lists the first ones and says what to do.
        ValueError: If images are larger than ``img_shape``, or not images.
            The message counts them, lists the first ones with their size
            and says what to do.
    """
    max_height, max_width = img_shape
    missing, wrong, sizes = [], [], []
    for path in img_paths:
        try:
            with Image.open(path) as img:
                width, height = img.size
        except FileNotFoundError:
            missing.append(path)
        except OSError as e:  # PIL's UnidentifiedImageError among them
            wrong.append(f'{path} is not an image ({e})')
        else:
            if height > max_height or width > max_width:
                wrong.append(f'{path} is {(height, width)}')
            sizes.append((height, width))
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(img_paths)} DOTA patch images not '
            f'found:{_listed(missing)}\n'
            "each annfiles/<patch id>.txt needs images/<patch id>.png: set "
            "data_prefix['img_path'] to the images/ folder of the same "
            "split, or re-run MMRotate's img_split.py for this split "
            '(--save-ext .png; docs/datasets.md, "DOTA v1.0")')
    if wrong:
        raise ValueError(
            f'{len(wrong)} of {len(img_paths)} DOTA patch images are larger '
            f'than img_shape {tuple(img_shape)} (height, width), or not '
            f'images:{_listed(wrong)}\n'
            'set img_shape to the patch size the split was cut with '
            "(img_split.py's --sizes); raw DOTA scenes must be split first "
            '(docs/datasets.md, "DOTA v1.0")')
    return sizes
