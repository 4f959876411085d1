"""Shared helpers: tiny detectors built from the upstream configs."""
import importlib.util
import os.path as osp
import re
import sys
import tempfile

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The scripts of tools/ import each other by name (Python puts tools/ on the
# path when one runs); the tests import them the same way, and the demo's
# generator and tiny configs (tools/synthetic) with them.
sys.path.insert(0, osp.join(REPO, 'tools'))

from synthetic import tiny  # noqa: E402

#: MMRotate is an extra (``pip install -e .[rotated]``): the mmdet 3.3 stack
#: (``make install STACK=mmdet3.3``) has none, and skips what needs it.
#: A module that needs it throughout starts with
#: ``pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)``.
HAS_MMROTATE = importlib.util.find_spec('mmrotate') is not None
MMROTATE_MISSING = ('needs MMRotate, which this stack has not: `make '
                    'install` (the default stack) or `pip install -e '
                    '.[rotated]`')
requires_mmrotate = pytest.mark.skipif(not HAS_MMROTATE,
                                       reason=MMROTATE_MISSING)
# a config file another reads: './x.py', '../x.py', '{{fileDirname}}/x.py'
_READS = re.compile(
    r"""['"]((?:\{\{fileDirname\}\}/|\.{1,2}/)[^'"]+\.py)['"]""")


def config_needs_mmrotate(path: str) -> bool:
    """Whether a config, or a config it reads (``_base_``,
    ``Config.fromfile``), names MMRotate (its scope or its configs)."""
    seen, todo = set(), [osp.normpath(path)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        with open(path, encoding='utf-8') as f:
            text = re.sub(r"'\s+'", '', f.read())  # 'a' 'b' -> 'ab'
        if 'mmrotate' in text:
            return True
        todo += [osp.normpath(osp.join(osp.dirname(path), ref.replace(
            '{{fileDirname}}/', ''))) for ref in _READS.findall(text)]
    return False


def config_params(paths, root: str = REPO) -> list:
    """``pytest.param`` of each config path, with its path relative to
    ``root`` as id, marked :data:`requires_mmrotate` if it needs MMRotate."""
    return [pytest.param(p, id=osp.relpath(p, root), marks=(
        [requires_mmrotate] if config_needs_mmrotate(p) else []))
        for p in paths]


def upstream_config(base: str) -> Config:
    """Load an upstream config (e.g. 'mmdet::retinanet/...py') by inheriting
    it, exactly as a user's config does."""
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'cfg.py')
        with open(path, 'w') as f:
            f.write(f'_base_ = {base!r}\n')
        return Config.fromfile(path)


def shrink_dense_detector(model: dict, num_classes: int = 3,
                          channels: int = 16, base_channels: int = 8) -> dict:
    """A tiny ResNet-18 FPN detector (see synthetic.tiny)."""
    return tiny.shrink_detector(model, num_classes, channels, base_channels)


@pytest.fixture(scope='session', autouse=True)
def single_thread():
    """The tests use tiny tensors: one intra-op thread is as fast, and
    avoids OpenMP spin-waits when the 2 CPU cores are shared."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_dior(root, num_trainval: int = 4, num_test: int = 2,
              size: int = 64, seed: int = 0):
    """Write a tiny dataset in DIOR's released layout (JPEG + VOC XML).

    Coloured rectangles on a noisy background, 1-3 objects an image, class
    names taken from DIOR (one of them capitalised, as in the release).
    """
    import os
    import os.path as osp

    import mmcv
    import numpy as np

    from ds2d2_mmrazor.datasets import DIOR_CLASSES

    rng = np.random.RandomState(seed)
    classes = [DIOR_CLASSES[0], DIOR_CLASSES[7], DIOR_CLASSES[18]]
    ann_dir = osp.join(root, 'Annotations', 'Horizontal Bounding Boxes')
    sets_dir = osp.join(root, 'ImageSets', 'Main')
    for d in (ann_dir, sets_dir):
        os.makedirs(d, exist_ok=True)
    ids = {'train': [], 'val': [], 'test': []}
    for i in range(num_trainval + num_test):
        img_id = f'{i + 1:05d}'
        split = 'test' if i >= num_trainval else ('train' if i % 2 == 0
                                                   else 'val')
        ids[split].append(img_id)
        img = rng.randint(60, 120, (size, size, 3)).astype(np.uint8)
        objects = []
        for _ in range(rng.randint(1, 4)):
            label = rng.randint(len(classes))
            w, h = rng.randint(12, size // 2, 2)
            x1, y1 = rng.randint(1, size - w), rng.randint(1, size - h)
            img[y1:y1 + h, x1:x1 + w] = (80 * label + 40, 200, 40)
            objects.append(
                f'<object><name>{classes[label]}</name><pose>Unspecified'
                f'</pose><truncated>0</truncated><difficult>0</difficult>'
                f'<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>'
                f'<xmax>{x1 + w}</xmax><ymax>{y1 + h}</ymax></bndbox>'
                '</object>')
        img_dir = 'JPEGImages-test' if split == 'test' else \
            'JPEGImages-trainval'
        mmcv.imwrite(img, osp.join(root, img_dir, f'{img_id}.jpg'))
        with open(osp.join(ann_dir, f'{img_id}.xml'), 'w') as f:
            f.write(f'<annotation><filename>{img_id}.jpg</filename><size>'
                    f'<width>{size}</width><height>{size}</height><depth>3'
                    f'</depth></size>{"".join(objects)}</annotation>')
    for split, names in ids.items():
        with open(osp.join(sets_dir, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return root


def make_dota_split(root: str, patches: dict, split: str = 'train',
                    size: int = 64) -> str:
    """Write DOTA v1.0 split patches as MMRotate's img_split does.

    ``root/split/images/<id>.png`` (grey, each annotated quadrilateral
    filled in its class's colour) and ``root/split/annfiles/<id>.txt``.

    Args:
        root (str): The split root (e.g. ``.../split_ss_dota``).
        patches (dict): Patch id -> its annotation lines (``x1 y1 ... x4
            y4 class difficulty``), written as given: tests also write
            malformed lines, which are simply not drawn.
        split (str): Sub-folder, e.g. 'train' or 'val'.
        size (int): Side of the square patches.

    Returns:
        str: ``root``.
    """
    import os

    import cv2
    import mmcv
    import numpy as np

    from ds2d2_mmrazor.datasets import DOTA_CLASSES

    for sub in ('images', 'annfiles'):
        os.makedirs(osp.join(root, split, sub), exist_ok=True)
    for patch_id, lines in patches.items():
        img = np.full((size, size, 3), 100, np.uint8)
        for line in lines:
            fields = line.split()
            try:
                corners = np.array(fields[:8], np.float64).reshape(4, 2)
                label = DOTA_CLASSES.index(fields[8])
            except (ValueError, IndexError):
                continue
            cv2.fillPoly(img, [np.round(corners).astype(np.int32)],
                         (40 + 13 * label, 220 - 11 * label, 60))
        mmcv.imwrite(img, osp.join(root, split, 'images', f'{patch_id}.png'))
        with open(osp.join(root, split, 'annfiles', f'{patch_id}.txt'),
                  'w') as f:
            f.write(''.join(line + '\n' for line in lines))
    return root


def tiny_config(config: str, data_root: str, work_dir: str) -> Config:
    """A repository config, made tiny for CPU tests: the generated DIOR
    data at 64x64, one epoch, tiny models without pretrained weights."""
    return tiny.tiny_config(config, data_root, work_dir, image_size=64,
                            max_epochs=1)
