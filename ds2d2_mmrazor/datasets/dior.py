"""DIOR as released: VOC-style XML annotations."""
import xml.etree.ElementTree as ET
from typing import List

from mmdet.datasets import XMLDataset
from mmdet.registry import DATASETS

DIOR_CLASSES = ('airplane', 'airport', 'baseballfield', 'basketballcourt',
                'bridge', 'chimney', 'dam', 'Expressway-Service-area',
                'Expressway-toll-station', 'golffield', 'groundtrackfield',
                'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
                'tenniscourt', 'trainstation', 'vehicle', 'windmill')


@DATASETS.register_module()
class DIORDataset(XMLDataset):
    """DIOR (Li et al., 2020): 23,463 800x800 images, 20 classes.

    Reads the release's layout, e.g. ``JPEGImages-trainval/``,
    ``Annotations/Horizontal Bounding Boxes/`` and
    ``ImageSets/Main/{train,val,test}.txt`` (see
    ``configs/_base_/datasets/dior.py``). Class names are spelled as in the
    XML files (two are capitalised). Unlike MMDetection's ``XMLDataset``,
    which silently skips objects whose class it does not know, an unknown
    class name is an error naming the file and the object.
    """
    METAINFO = dict(
        classes=DIOR_CLASSES,
        # one distinct colour per class for the visualiser
        palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230),
                 (106, 0, 228), (0, 60, 100), (0, 80, 100), (0, 0, 70),
                 (0, 0, 192), (250, 170, 30), (100, 170, 30), (220, 220, 0),
                 (175, 116, 175), (250, 0, 30), (165, 42, 42),
                 (255, 77, 255), (0, 226, 252), (182, 182, 255),
                 (0, 82, 0), (120, 166, 157)])

    def _parse_instance_info(self, raw_ann_info: ET.ElementTree,
                             minus_one: bool = True) -> List[dict]:
        classes = self._metainfo['classes']
        for index, obj in enumerate(raw_ann_info.findall('object')):
            name = obj.findtext('name')
            if name not in classes:
                filename = raw_ann_info.getroot().findtext('filename')
                raise ValueError(
                    f'{filename}: object {index} has class {name!r}, which '
                    f'is not one of the dataset classes {classes}')
        return super()._parse_instance_info(raw_ann_info, minus_one)
