"""DOTA v1.0 split patches (MMRotate's ``img_split``), read strictly."""
import glob
import inspect
import os.path as osp
from typing import List, Tuple

from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from .dota_patches import check_patch_images, list_patches, read_patch_txt


@DATASETS.register_module()
class DOTAPatchDataset(DOTADataset):
    """DOTA v1.0 split patches, as MMRotate's ``DOTADataset``, read strictly.

    Reads what MMRotate's ``img_split`` writes (``<split>/images/*.png``,
    ``<split>/annfiles/*.txt``, one ``x1 y1 ... x4 y4 class difficulty`` a
    line), with MMRotate's conventions: ``bbox`` is the 8 corner
    coordinates as written (corners past the patch border are kept), and
    objects with a difficulty above ``diff_thr`` get ``ignore_flag=1`` (by
    default none: MMRotate's default). Patches are in sorted order, each at
    its own size: ``img_shape`` is the size the split was cut with, and the
    patches at a scene's border are smaller when ``img_split`` ran with
    ``--no-padding``. The dataset holds ``img_shape`` itself, so it behaves
    the same on every MMRotate (1.2 no longer takes it).

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
      ``FileNotFoundError``, images larger than ``img_shape`` (or not
      images) a ``ValueError``, each listing up to
      :data:`~ds2d2_mmrazor.datasets.dota_patches.MAX_LISTED` files and
      counting all;
    - a missing annotation or image folder is a ``FileNotFoundError``
      naming it.

    Args:
        img_shape (tuple[int, int]): The split's patch ``(height, width)``
            (``img_split.py --sizes``), which no patch may exceed.
            Defaults to (1024, 1024).
        **kwargs: Arguments of MMRotate's ``DOTADataset``: ``ann_file``
            (the ``annfiles`` folder; ``''`` for unannotated test patches),
            ``data_prefix=dict(img_path=...)``, ``diff_thr`` (default 100),
            ...
    """

    def __init__(self,
                 img_shape: Tuple[int, int] = (1024, 1024),
                 **kwargs) -> None:
        if len(img_shape) != 2 or not all(
                isinstance(v, int) and v > 0 for v in img_shape):
            raise ValueError(
                f'{type(self).__name__}: img_shape must be the split\'s '
                f'patch (height, width), two positive integers, got '
                f'{img_shape!r}')
        self.img_shape = tuple(img_shape)
        # MMRotate 1.0's DOTADataset takes (and sets) img_shape, 1.2's not
        if 'img_shape' in inspect.signature(DOTADataset.__init__).parameters:
            kwargs['img_shape'] = self.img_shape
        super().__init__(**kwargs)

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
            patch_ids = sorted(
                osp.splitext(osp.basename(path))[0]
                for path in glob.glob(osp.join(img_dir, '*.png')))
        else:
            patch_ids = list_patches(self.ann_file)
        sizes = check_patch_images(
            [osp.join(img_dir, f'{p}.png') for p in patch_ids],
            self.img_shape)
        data_list = []
        for patch_id, (height, width) in zip(patch_ids, sizes):
            if self.ann_file == '':  # as MMRotate's: one empty instance
                instances = [dict(bbox=[], bbox_label=[], ignore_flag=0)]
            else:
                instances = read_patch_txt(
                    osp.join(self.ann_file, f'{patch_id}.txt'),
                    self.metainfo['classes'], (height, width),
                    self.diff_thr)
            data_list.append(
                dict(img_id=patch_id, file_name=f'{patch_id}.png',
                     img_path=osp.join(img_dir, f'{patch_id}.png'),
                     height=height, width=width, instances=instances))
        return data_list
