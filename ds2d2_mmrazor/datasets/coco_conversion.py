"""Conversion of DIOR (horizontal and oriented boxes) and DOTA split patches
to COCO json, for MMDetection's ``CocoDataset`` and ``CocoMetric``.

The files are read by the loaders' own readers
(:func:`~ds2d2_mmrazor.datasets.annotations.read_voc_xml`,
:func:`~ds2d2_mmrazor.datasets.annotations.read_dota_txt`), so the same
input is refused with the same errors, and ``CocoDataset`` loads the json
back with the boxes, labels and ignore flags the loaders give:

- ``images``: ``id`` 1, 2, ... in reading order, ``file_name`` relative to
  the image folder (``00001.jpg``, ``P0000__1024__0___0.png``),
  ``width``, ``height``;
- ``categories``: ids 1..N, the dataset classes in label order;
- ``annotations``: ``bbox`` ``[x, y, w, h]`` in the loaders' 0-based
  pixels; ``iscrowd`` is the loader's ``ignore_flag`` (DIOR's
  ``<difficult>``; DOTA: difficulty above ``diff_thr``, none by default, as
  MMRotate), which ``CocoDataset`` loads as ``ignore_flag=1`` and COCO's
  evaluation treats as an ignore region. Horizontal boxes: ``area`` is
  ``w * h``. Quadrilaterals: ``segmentation`` is the polygon (the 8 corner
  coordinates as written), ``bbox`` the box enclosing it clipped to the
  image (so COCO bbox AP works), ``area`` the polygon's area (COCO's
  convention: the segmentation's area).
"""
import os.path as osp
from typing import Iterable, List, Sequence, Tuple

from mmengine.fileio import list_from_file
from mmengine.utils import track_iter_progress

from .annotations import (enclosing_box, polygon_area, read_voc_xml,
                          warn_clipped)
from .dior import DIOR_CLASSES, HBB_ANN_SUBDIR, OBB_ANN_SUBDIR, DIORDataset
from .dota_patches import (DOTA_CLASSES, check_patch_images, list_patches,
                           read_patch_txt)


def coco_box(bbox: Sequence[float], width: int, height: int) -> dict:
    """The COCO fields of one loader box.

    Args:
        bbox (Sequence[float]): ``[x1, y1, x2, y2]`` or a quadrilateral
            ``[x1, y1, ..., x4, y4]``.
        width (int): Image width.
        height (int): Image height.

    Returns:
        dict: ``bbox`` (``[x, y, w, h]``) and ``area``, plus
        ``segmentation`` (``[polygon]``) for a quadrilateral.
    """
    if len(bbox) == 4:
        x1, y1, x2, y2 = bbox
        return dict(bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) *
                    (y2 - y1))
    x1, y1, x2, y2 = enclosing_box(bbox, width, height)
    return dict(bbox=[x1, y1, x2 - x1, y2 - y1], area=polygon_area(bbox),
                segmentation=[list(bbox)])


def to_coco(images: Iterable[dict], classes: Sequence[str]) -> dict:
    """Assemble a COCO dataset from images in the loaders' format.

    Args:
        images (Iterable[dict]): ``file_name``, ``width``, ``height`` and
            ``instances`` (``bbox``, ``bbox_label``, ``ignore_flag``).
        classes (Sequence[str]): Class names in label order.

    Returns:
        dict: ``images``, ``annotations`` and ``categories``.
    """
    coco_images: List[dict] = []
    annotations: List[dict] = []
    for image_id, image in enumerate(images, 1):
        width, height = image['width'], image['height']
        coco_images.append(
            dict(id=image_id, file_name=image['file_name'], width=width,
                 height=height))
        for instance in image['instances']:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=instance['bbox_label'] + 1,
                     iscrowd=instance['ignore_flag'],
                     **coco_box(instance['bbox'], width, height)))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    return dict(images=coco_images, annotations=annotations,
                categories=categories)


def dior_to_coco(data_root: str,
                 splits: Sequence[str] = ('test', ),
                 oriented: bool = False) -> dict:
    """Convert DIOR (or DIOR-R) as released to COCO.

    Args:
        data_root (str): The dataset root (``ImageSets/Main/``,
            ``Annotations/...``).
        splits (Sequence[str]): Splits to convert into one file, e.g.
            ``('train', 'val')`` (images in ``JPEGImages-trainval``) or
            ``('test', )`` (``JPEGImages-test``). Defaults to ('test', ).
        oriented (bool): Read ``Annotations/Oriented Bounding Boxes``
            (DIOR-R, as :class:`~ds2d2_mmrazor.datasets.DIORRDataset`)
            instead of ``Annotations/Horizontal Bounding Boxes`` (as
            :class:`~ds2d2_mmrazor.datasets.DIORDataset`). Defaults to
            False.

    Returns:
        dict: The COCO dataset (see the module docstring).

    Raises:
        FileNotFoundError: If a split file or the annotation folder is
            missing.
        ValueError: On the loader's errors (see ``read_voc_xml``).
    """
    if oriented:
        from .dior_r import DIORRDataset  # needs MMRotate (its box type)
        dataset = DIORRDataset
    else:
        dataset = DIORDataset
    ann_dir = osp.join(data_root, OBB_ANN_SUBDIR if oriented else
                       HBB_ANN_SUBDIR)
    split_files = [
        osp.join(data_root, 'ImageSets', 'Main', f'{split}.txt')
        for split in splits
    ]
    for path in [*split_files, ann_dir]:
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{path!r} not found: expected DIOR as released under '
                f'{data_root!r}')
    img_ids = [i for path in split_files for i in list_from_file(path)]
    images: List[dict] = []
    clipped: List[Tuple[str, int]] = []
    for img_id in track_iter_progress(img_ids):
        xml_path = osp.join(ann_dir, f'{img_id}.xml')
        ann = read_voc_xml(xml_path, DIOR_CLASSES, dataset.box_type,
                           dataset.ignore_case)
        clipped.extend((xml_path, index) for index in ann['clipped'])
        images.append(
            dict(file_name=f'{img_id}.jpg', width=ann['width'],
                 height=ann['height'], instances=ann['instances']))
    warn_clipped('dior_to_coco', clipped)
    return to_coco(images, DIOR_CLASSES)


def dota_to_coco(split_dir: str,
                 img_shape: Tuple[int, int] = (1024, 1024),
                 diff_thr: int = 100) -> dict:
    """Convert a split of DOTA patches (MMRotate's ``img_split``) to COCO.

    Args:
        split_dir (str): The split's folder, with ``annfiles/*.txt`` and
            ``images/*.png`` (which the file names are relative to).
        img_shape (tuple[int, int]): The split's patch ``(height, width)``,
            which no patch may exceed; smaller (border) patches keep their
            own size. Defaults to (1024, 1024).
        diff_thr (int): Objects with a difficulty above it become
            ``iscrowd=1``. Defaults to 100 (none: MMRotate's default).

    Returns:
        dict: The COCO dataset (see the module docstring).

    Raises:
        FileNotFoundError: If ``annfiles`` or patch images are missing.
        ValueError: On the loader's errors (see ``read_dota_txt``), for a
            raw (unsplit) label file and for images larger than
            ``img_shape`` (as ``DOTAPatchDataset``: see
            :mod:`~ds2d2_mmrazor.datasets.dota_patches`).
    """
    ann_dir = osp.join(split_dir, 'annfiles')
    patch_ids = list_patches(ann_dir)
    sizes = check_patch_images(
        [osp.join(split_dir, 'images', f'{p}.png') for p in patch_ids],
        img_shape)
    images = [
        dict(file_name=f'{patch_id}.png', width=width, height=height,
             instances=read_patch_txt(
                 osp.join(ann_dir, f'{patch_id}.txt'), DOTA_CLASSES,
                 (height, width), diff_thr))
        for patch_id, (height, width) in track_iter_progress(
            list(zip(patch_ids, sizes)))
    ]
    return to_coco(images, DOTA_CLASSES)
