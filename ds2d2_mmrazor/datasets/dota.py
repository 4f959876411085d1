"""DOTA v1.0 split patches (MMRotate's ``img_split``), read strictly."""
import glob
import os.path as osp
from typing import List

from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from .annotations import read_dota_txt

DOTA_CLASSES = DOTADataset.METAINFO['classes']


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


@DATASETS.register_module()
class DOTAPatchDataset(DOTADataset):
    """DOTA v1.0 split patches, as MMRotate's ``DOTADataset``, read strictly.

    Reads what MMRotate's ``img_split`` writes (``<split>/images/*.png``,
    ``<split>/annfiles/*.txt``, one ``x1 y1 ... x4 y4 class difficulty`` a
    line), with MMRotate's conventions: ``bbox`` is the 8 corner
    coordinates as written (corners past the patch border are kept), all
    patches are ``img_shape``, and objects with a difficulty above
    ``diff_thr`` get ``ignore_flag=1`` (by default none: MMRotate's
    default). Patches are in sorted order.

    Unlike MMRotate's loader, which fails with a bare ``KeyError`` /
    ``IndexError`` / ``ValueError``, a line with an unknown class, the wrong
    number of fields, a non-numeric coordinate or difficulty, or a
    zero-area quadrilateral or one outside the patch, is a ``ValueError``
    naming the file and the line (see
    :func:`~ds2d2_mmrazor.datasets.annotations.read_dota_txt`); a missing
    annotation or image folder is a ``FileNotFoundError`` naming it.

    Args:
        **kwargs: Arguments of MMRotate's ``DOTADataset``: ``ann_file``
            (the ``annfiles`` folder; ``''`` for unannotated test patches),
            ``data_prefix=dict(img_path=...)``, ``img_shape`` (default
            (1024, 1024)), ``diff_thr`` (default 100), ...
    """

    def load_data_list(self) -> List[dict]:
        """Read every patch's annotation file.

        Returns:
            list[dict]: One data info a patch: ``img_id``, ``file_name``,
            ``img_path``, ``height``, ``width`` and ``instances``
            (``bbox``, ``bbox_label``, ``ignore_flag``).
        """
        img_dir = self.data_prefix['img_path']
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{type(self).__name__}: image folder {img_dir!r} '
                "(data_prefix['img_path']) not found")
        if self.ann_file == '':  # unannotated test patches
            return super().load_data_list()
        height, width = self.img_shape
        data_list = []
        for patch_id in list_patches(self.ann_file):
            file_name = f'{patch_id}.png'
            instances = read_dota_txt(
                osp.join(self.ann_file, f'{patch_id}.txt'),
                self.metainfo['classes'], self.img_shape, self.diff_thr)
            data_list.append(
                dict(img_id=patch_id, file_name=file_name,
                     img_path=osp.join(img_dir, file_name), height=height,
                     width=width, instances=instances))
        return data_list
