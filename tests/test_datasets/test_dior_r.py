"""DIORRDataset reads DIOR-R's oriented boxes (<robndbox> corners) strictly,
for MMRotate."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..conftest import MMROTATE_MISSING, make_dior

pytest.importorskip('mmrotate', reason=MMROTATE_MISSING)

from ds2d2_mmrazor.datasets import DIOR_CLASSES, DIORRDataset  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ANN_DIR = osp.join('Annotations', 'Oriented Bounding Boxes')
CORNERS = ('x_left_top', 'y_left_top', 'x_right_top', 'y_right_top',
           'x_right_bottom', 'y_right_bottom', 'x_left_bottom',
           'y_left_bottom')
# known oriented boxes of the generated images (64x64), as DIOR-R writes
# them: (name, 8 corner coordinates, difficult)
BOXES = {
    '00001': [('airplane', (10, 10, 30, 10, 30, 20, 10, 20), 0),
              ('expressway-service-area',  # lower-cased spelling
               (32.5, 20, 52.5, 40, 42.5, 50, 22.5, 30), 1)],
    '00003': [('Expressway-Service-area', (0, 40, 20, 40, 20, 63, 0, 63),
               0)],
    '00005': [('vehicle', (-4, 2, 6, 2, 6, 12, -4, 12), 0)],  # past x = 0
}


def obb_object(name, corners, difficult=0, angle=0):
    box = ''.join(f'<{k}>{v}</{k}>' for k, v in zip(CORNERS, corners))
    return (f'<object><name>{name}</name><pose>Unspecified</pose>'
            f'<truncated>0</truncated><difficult>{difficult}</difficult>'
            f'<robndbox>{box}</robndbox><angle>{angle}</angle></object>')


def write_obb_xml(path, objects, size=64):
    """Write a DIOR-R XML file; ``objects`` are raw ``<object>`` strings."""
    with open(path, 'w') as f:
        f.write(f'<annotation><filename>{osp.basename(path)[:-4]}.jpg'
                f'</filename><source><database>DIOR</database></source>'
                f'<size><width>{size}</width><height>{size}</height><depth>'
                f'3</depth></size><segmented>0</segmented>'
                f'{"".join(objects)}</annotation>')


def make_dior_r(root):
    """DIOR's layout (images, split files, horizontal boxes) from
    ``make_dior``, plus DIOR-R's oriented boxes: ``BOXES`` for images
    00001, 00003 (train), 00005 (test), one box for the others."""
    import os
    make_dior(root, num_trainval=4, num_test=2)
    os.makedirs(osp.join(root, ANN_DIR))
    for i in range(1, 7):
        img_id = f'{i:05d}'
        objects = BOXES.get(img_id, [('ship', (5, 5, 15, 5, 15, 9, 5, 9), 0)])
        write_obb_xml(osp.join(root, ANN_DIR, f'{img_id}.xml'),
                      [obb_object(*obj) for obj in objects])
    return root


@pytest.fixture
def dior_r(tmp_path):
    return make_dior_r(str(tmp_path / 'DIOR'))


def build(root, split='train', img_subdir='JPEGImages-trainval'):
    return DIORRDataset(
        data_root=root, ann_file=f'ImageSets/Main/{split}.txt',
        img_subdir=img_subdir, data_prefix=dict(sub_data_root=''),
        pipeline=[], test_mode=True)


def test_registered_in_mmrotate():
    from mmrotate.registry import DATASETS
    assert DATASETS.get('DIORRDataset') is DIORRDataset


def test_reads_corners_as_written_in_dior_label_order(dior_r):
    dataset = build(dior_r)
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(dior_r, 'JPEGImages-trainval',
                                        '00001.jpg')
    assert (info['height'], info['width']) == (64, 64)
    assert info['instances'] == [
        dict(bbox=[10, 10, 30, 10, 30, 20, 10, 20], bbox_label=0,
             ignore_flag=0),
        # names match case-insensitively: the lower-cased spelling is
        # DIOR_CLASSES[7]
        dict(bbox=[32.5, 20, 52.5, 40, 42.5, 50, 22.5, 30], bbox_label=7,
             ignore_flag=1),
    ]
    assert dataset.get_data_info(1)['instances'][0]['bbox_label'] == 7
    assert DIOR_CLASSES[7] == 'Expressway-Service-area'


def test_corners_past_the_border_are_kept(dior_r):
    dataset = build(dior_r, 'test', 'JPEGImages-test')
    assert dataset.get_data_info(0)['instances'][0]['bbox'] == \
        [-4, 2, 6, 2, 6, 12, -4, 12]


@pytest.mark.parametrize('obj, problem', [
    (obb_object('plane', (1, 1, 9, 1, 9, 9, 1, 9)),
     "has class 'plane', which is not one of the dataset classes"),
    ('<object><name>ship</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9'
     '</xmax><ymax>9</ymax></bndbox></object>', 'has no <robndbox>'),
    (obb_object('ship', (1, 1, 9, 1, 9, 9, 1, 9)).replace(
        '<y_left_bottom>9</y_left_bottom>', ''),
     'has no <robndbox>/<y_left_bottom>'),
    (obb_object('ship', (1, 1, '9,5', 1, 9, 9, 1, 9)),
     "has a non-numeric <robndbox>/<x_right_top> '9,5'"),
    (obb_object('ship', (1, 1, 9, 1, 9, 1, 1, 1)),
     r'has a degenerate \(zero-area\) quadrilateral '
     r'\[1\.0, 1\.0, 9\.0, 1\.0, 9\.0, 1\.0, 1\.0, 1\.0\]'),
    (obb_object('ship', (70, 1, 90, 1, 90, 9, 70, 9)),
     r'has quadrilateral \[70\.0, .*\] outside the 64x64 image'),
])
def test_bad_object_is_an_error_naming_file_and_object(dior_r, obj,
                                                       problem):
    path = osp.join(dior_r, ANN_DIR, '00003.xml')
    write_obb_xml(path, [obb_object('ship', (1, 1, 9, 1, 9, 9, 1, 9)), obj])
    with pytest.raises(ValueError) as error:
        build(dior_r)
    assert error.match(r'^00003\.jpg: object 1 ' + problem)
    assert str(error.value).endswith(f'(annotation file: {path})')


def test_missing_annotation_folder_is_a_clear_error(tmp_path):
    root = make_dior(str(tmp_path / 'DIOR'))  # no oriented annotations
    with pytest.raises(FileNotFoundError,
                       match=r"^DIORRDataset: annotation folder \(ann_subdir"
                       r"\) '.*Oriented Bounding Boxes' not found"):
        build(root)


def test_config_builds_mmrotate_datasets_with_rotated_boxes(dior_r):
    from mmrotate.registry import DATASETS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'dior_r.py'))
    for split in cfg.train_dataloader.dataset.datasets:
        split.data_root = dior_r
    cfg.val_dataloader.dataset.data_root = dior_r
    assert cfg.val_evaluator.type == 'DOTAMetric'
    with DefaultScope.overwrite_default_scope('mmrotate'):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        test = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) == 4 and len(test) == 2
    # the test pipeline loads the boxes after resizing: original pixels
    boxes = test[0]['data_samples'].gt_instances.bboxes
    assert type(boxes).__name__ == 'RotatedBoxes'
    cx, cy, w, h, _ = boxes.tensor[0].tolist()  # (-4, 2) .. (6, 12)
    assert (cx, cy) == pytest.approx((1, 7))
    assert w * h == pytest.approx(100)
    assert isinstance(train[0]['inputs'], torch.Tensor)
