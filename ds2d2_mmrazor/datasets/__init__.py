from .annotations import (enclosing_box, polygon_area, read_dota_txt,
                          read_voc_xml)
from .coco_conversion import coco_box, dior_to_coco, dota_to_coco, to_coco
from .dior import DIOR_CLASSES, HBB_ANN_SUBDIR, OBB_ANN_SUBDIR, DIORDataset
from .dior_r import DIORRDataset
from .dota import DOTA_CLASSES, DOTAPatchDataset, list_patches
from .transforms import PackDetInputsWithGT

__all__ = [
    'DIOR_CLASSES', 'DIORDataset', 'DIORRDataset', 'DOTA_CLASSES',
    'DOTAPatchDataset', 'HBB_ANN_SUBDIR', 'OBB_ANN_SUBDIR',
    'PackDetInputsWithGT', 'coco_box',
    'dior_to_coco', 'dota_to_coco', 'enclosing_box', 'list_patches',
    'polygon_area', 'read_dota_txt', 'read_voc_xml', 'to_coco'
]
