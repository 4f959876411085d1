"""DOTA v1.0 split patches (MMRotate's ``img_split``), read strictly."""
import os.path as osp
from typing import List

from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from .dota_patches import check_patch_images, list_patches, read_patch_txt


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
    ``IndexError`` / ``ValueError``, or not until the pipeline loads the
    image, it checks at load time:

    - each annotation line: an unknown class, the wrong number of fields, a
      non-numeric coordinate or difficulty, or a zero-area quadrilateral or
      one outside the patch, is a ``ValueError`` naming the file and the
      line (see :func:`~ds2d2_mmrazor.datasets.annotations.read_dota_txt`);
    - a raw DOTA label file (``imagesource:`` / ``gsd:`` header: the
      scenes are not split) is a ``ValueError`` naming the file and giving
      the split command;
    - each patch image, by its header only (see
      :func:`~ds2d2_mmrazor.datasets.dota_patches.check_patch_images`;
      about 30 ms a 1000 patches): missing images are a
      ``FileNotFoundError``, images of another size than ``img_shape`` (or
      not images) a ``ValueError``, each listing up to
      :data:`~ds2d2_mmrazor.datasets.dota_patches.MAX_LISTED` files and
      counting all;
    - a missing annotation or image folder is a ``FileNotFoundError``
      naming it.

    Args:
        **kwargs: Arguments of MMRotate's ``DOTADataset``: ``ann_file``
            (the ``annfiles`` folder; ``''`` for unannotated test patches),
            ``data_prefix=dict(img_path=...)``, ``img_shape`` (default
            (1024, 1024)), ``diff_thr`` (default 100), ...
    """

    def load_data_list(self) -> List[dict]:
        """Read every patch's annotation file and check its image.

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
            data_list = super().load_data_list()
        else:
            data_list = self._load_annotated(img_dir)
        check_patch_images([info['img_path'] for info in data_list],
                           self.img_shape)
        return data_list

    def _load_annotated(self, img_dir: str) -> List[dict]:
        height, width = self.img_shape
        data_list = []
        for patch_id in list_patches(self.ann_file):
            file_name = f'{patch_id}.png'
            instances = read_patch_txt(
                osp.join(self.ann_file, f'{patch_id}.txt'),
                self.metainfo['classes'], self.img_shape, self.diff_thr)
            data_list.append(
                dict(img_id=patch_id, file_name=file_name,
                     img_path=osp.join(img_dir, file_name), height=height,
                     width=width, instances=instances))
        return data_list
