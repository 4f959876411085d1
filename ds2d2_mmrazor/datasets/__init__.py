"""Datasets of remote-sensing detection, read strictly.

DIOR (horizontal boxes) and the COCO conversions need only MMDetection;
DIOR-R and DOTA split patches (oriented boxes) need MMRotate, and are
registered only where it is installed. Without it, importing them says what
to install.
"""
import importlib.util

from .annotations import (enclosing_box, polygon_area, read_dota_txt,
                          read_voc_xml)
from .coco_conversion import coco_box, dior_to_coco, dota_to_coco, to_coco
from .dior import DIOR_CLASSES, HBB_ANN_SUBDIR, OBB_ANN_SUBDIR, DIORDataset
from .dota_patches import DOTA_CLASSES, list_patches
from .transforms import PackDetInputsWithGT

#: the names that need MMRotate
ROTATED = ('DIORRDataset', 'DOTAPatchDataset')

__all__ = [
    'DIOR_CLASSES', 'DIORDataset', 'DOTA_CLASSES', 'HBB_ANN_SUBDIR',
    'OBB_ANN_SUBDIR', 'PackDetInputsWithGT', 'coco_box', 'dior_to_coco',
    'dota_to_coco', 'enclosing_box', 'list_patches', 'polygon_area',
    'read_dota_txt', 'read_voc_xml', 'to_coco'
]

if importlib.util.find_spec('mmrotate') is not None:
    from .dior_r import DIORRDataset
    from .dota import DOTAPatchDataset
    __all__ += ['DIORRDataset', 'DOTAPatchDataset']
else:
    def __getattr__(name: str):
        if name in ROTATED:
            raise ImportError(
                f'{name} reads oriented boxes and needs MMRotate, which is '
                'not installed: `make install` (the full stack) or '
                '`pip install -e .[rotated]` (mmrotate 1.0.0rc1, which '
                'needs mmdet 3.1.0 and mmcv < 2.1)')
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
