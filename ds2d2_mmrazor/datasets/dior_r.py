"""DIOR-R: DIOR's oriented boxes, read strictly, for MMRotate."""
from mmrotate.registry import DATASETS

from .dior import OBB_ANN_SUBDIR, DIORDataset


@DATASETS.register_module()
class DIORRDataset(DIORDataset):
    """DIOR-R (Cheng et al., 2022): DIOR's images with oriented boxes.

    The release's ``Annotations/Oriented Bounding Boxes/<id>.xml`` are VOC
    files whose objects have ``<robndbox>`` with the four corners
    ``<x_left_top>, <y_left_top>, <x_right_top>, <y_right_top>,
    <x_right_bottom>, <y_right_bottom>, <x_left_bottom>,
    <y_left_bottom>`` (and an ``<angle>``, implied by the corners and not
    read). ``bbox`` is the 8 corner coordinates in that order, as written,
    which MMRotate loads with ``LoadAnnotations(box_type='qbox')``.

    The layout, configuration keys and strictness are those of
    :class:`~ds2d2_mmrazor.datasets.DIORDataset` (same ``img_subdir``,
    ``ann_file``, classes and label order), except that:

    - class names are matched case-insensitively, as MMRotate's own
      ``DIORDataset`` does (it lower-cases them); any other name is still
      an error;
    - corners outside the image are kept (an oriented box of an object at
      the border extends past it, as in MMRotate); a zero-area
      quadrilateral, or one wholly outside the image, is a ``ValueError``
      naming the file and the object.

    MMRotate's ``DIORDataset`` reads the same files, but fails on an
    unknown name or a missing tag with a bare ``KeyError`` /
    ``AttributeError`` that names neither, and orders the classes
    differently (``expressway-*`` before ``dam``); this class keeps DIOR's
    label order, so that horizontal and oriented DIOR share class ids.

    Args:
        ann_subdir (str): Annotation folder under ``data_root``. Defaults to
            'Annotations/Oriented Bounding Boxes'.
        **kwargs: Arguments of :class:`~ds2d2_mmrazor.datasets.DIORDataset`.
    """
    box_type = 'qbox'
    ignore_case = True

    def __init__(self, ann_subdir: str = OBB_ANN_SUBDIR, **kwargs) -> None:
        super().__init__(ann_subdir=ann_subdir, **kwargs)
