"""DIOR as released: VOC-style XML annotations, read strictly."""
import os.path as osp
from typing import List

from mmdet.datasets import XMLDataset
from mmdet.registry import DATASETS
from mmengine.fileio import exists, isdir

from .annotations import read_voc_xml, warn_clipped

DIOR_CLASSES = ('airplane', 'airport', 'baseballfield', 'basketballcourt',
                'bridge', 'chimney', 'dam', 'Expressway-Service-area',
                'Expressway-toll-station', 'golffield', 'groundtrackfield',
                'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
                'tenniscourt', 'trainstation', 'vehicle', 'windmill')
# the release's annotation folders, under the dataset root
HBB_ANN_SUBDIR = 'Annotations/Horizontal Bounding Boxes'
OBB_ANN_SUBDIR = 'Annotations/Oriented Bounding Boxes'


@DATASETS.register_module()
class DIORDataset(XMLDataset):
    """DIOR (Li et al., 2020): 23,463 800x800 images, 20 classes.

    Reads the release's layout, e.g. ``JPEGImages-trainval/``,
    ``Annotations/Horizontal Bounding Boxes/`` and
    ``ImageSets/Main/{train,val,test}.txt`` (see
    ``configs/_base_/datasets/dior.py``). Class names are spelled as in the
    XML files (two are capitalised).

    Boxes follow MMDetection's VOC convention: the XML's 1-based pixel
    indices minus 1 (``minus_one=True``), as ``[x1, y1, x2, y2]``;
    coordinates are not rounded. ``<difficult>`` objects get
    ``ignore_flag=1``, as do boxes smaller than ``filter_cfg``'s
    ``bbox_min_size`` if set.

    Unlike MMDetection's ``XMLDataset``, which silently skips objects whose
    class it does not know, the loader refuses what it cannot read exactly
    (see :func:`~ds2d2_mmrazor.datasets.annotations.read_voc_xml`):

    - a missing ``ann_file``, image or annotation folder is a
      ``FileNotFoundError`` naming it;
    - a missing or malformed XML file (not well-formed, no ``<size>``, an
      object without ``<name>`` or ``<bndbox>``, a non-numeric coordinate)
      and an unknown class name are a ``ValueError`` naming the file (and
      the object);
    - a box reaching beyond the image is clipped to it; one warning a load
      (through the current ``MMLogger``) gives the number of clipped boxes
      and an example;
    - an empty box (``xmax <= xmin`` or ``ymax <= ymin`` as written), or
      one wholly outside the image (empty once clipped), is a
      ``ValueError`` naming the file and the object: fix or delete it in
      the XML file. Nothing is dropped silently.

    Args:
        ann_subdir (str): Annotation folder under ``data_root``. Defaults to
            'Annotations/Horizontal Bounding Boxes'.
        **kwargs: Arguments of MMDetection's ``XMLDataset``: ``img_subdir``
            (``'JPEGImages-trainval'`` or ``'JPEGImages-test'``),
            ``ann_file`` (``'ImageSets/Main/<split>.txt'``), ``data_root``,
            ...
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
    # the box element read from each object (see ``read_voc_xml``), and
    # whether class names are matched case-insensitively
    box_type = 'hbox'
    ignore_case = False

    def __init__(self, ann_subdir: str = HBB_ANN_SUBDIR, **kwargs) -> None:
        super().__init__(ann_subdir=ann_subdir, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the layout, read every listed image's annotation file and
        log one warning for the boxes clipped to their image.

        Returns:
            list[dict]: One data info an image.
        """
        for what, path, found in (
                ('split file (ann_file)', self.ann_file, exists),
                ('image folder (img_subdir)',
                 osp.join(self.sub_data_root, self.img_subdir), isdir),
                ('annotation folder (ann_subdir)',
                 osp.join(self.sub_data_root, self.ann_subdir), isdir)):
            if not found(path, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'{type(self).__name__}: {what} {path!r} not found. Put '
                    f'the dataset as released under data_root '
                    f'{self.data_root!r}, or set data_root to where it is.')
        self._clipped = []
        data_list = super().load_data_list()
        warn_clipped(type(self).__name__, self._clipped)
        return data_list

    def parse_data_info(self, img_info: dict) -> dict:
        """Read one image's annotation file.

        Args:
            img_info (dict): ``img_id``, ``file_name`` (relative to
                ``data_root``) and ``xml_path``.

        Returns:
            dict: ``img_path``, ``img_id``, ``xml_path``, ``height``,
            ``width`` and ``instances`` (``bbox``, ``bbox_label``,
            ``ignore_flag``).
        """
        xml_path = img_info['xml_path']
        ann = read_voc_xml(xml_path, self._metainfo['classes'],
                           self.box_type, self.ignore_case,
                           self.backend_args)
        self._clipped.extend((xml_path, index) for index in ann['clipped'])
        min_size = self.bbox_min_size
        if min_size is not None:
            for instance in ann['instances']:
                xs, ys = instance['bbox'][0::2], instance['bbox'][1::2]
                if min(max(xs) - min(xs), max(ys) - min(ys)) < min_size:
                    instance['ignore_flag'] = 1
        return dict(
            img_path=osp.join(self.sub_data_root, img_info['file_name']),
            img_id=img_info['img_id'],
            xml_path=xml_path,
            height=ann['height'],
            width=ann['width'],
            instances=ann['instances'])
