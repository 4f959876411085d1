"""tools/visualize.py in-process on a tiny DS2D2 checkpoint (built, not
trained) and a tiny baseline."""
import importlib
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from ds2d2_mmrazor.datasets import DIOR_CLASSES, DIORDataset
from ds2d2_mmrazor.ops import disw_weights

from ..conftest import make_dior, shrink_dense_detector, tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')


def load_tool(name: str):
    """Import tools/<name>.py (tests/conftest.py puts tools/ on the
    path, as Python does when a tool runs)."""
    return importlib.import_module(name)


@pytest.fixture(scope='module')
def visualize():
    return load_tool('visualize')


def save(model, cfg, path):
    torch.save(dict(meta=dict(dataset_meta=DIORDataset.METAINFO,
                              cfg=cfg.pretty_text),
                    state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def artefacts(tmp_path_factory):
    """A DS2D2 config + checkpoint and a baseline config + checkpoint."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmrazor.registry import MODELS as RAZOR_MODELS

    root = tmp_path_factory.mktemp('visualize')
    data = make_dior(str(root / 'DIOR')) + '/'
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg = tiny_config(
        osp.join(CONFIGS, 'ds2d2_retina_r18_r101_dior.py'), data,
        root / 'work')
    cfg.model.update(teacher_ckpt=None, amplifier_ckpt=None)
    ds2d2 = RAZOR_MODELS.build(cfg.model)
    out = dict(root=root, data=data, ds2d2_cfg=str(root / 'ds2d2.py'),
               student_cfg=str(root / 'student.py'),
               ds2d2_state=ds2d2.state_dict())
    cfg.dump(out['ds2d2_cfg'])
    out['ds2d2_ckpt'] = save(ds2d2, cfg, root / 'ds2d2.pth')
    # the student config, made tiny as the DS2D2 student is
    cfg = tiny_config(
        osp.join(CONFIGS, 'retinanet_r18_fpn_2x_dior.py'), data,
        root / 'work')
    shrink_dense_detector(cfg.model, num_classes=20, base_channels=8)
    cfg.dump(out['student_cfg'])
    out['baseline_ckpt'] = save(DET_MODELS.build(cfg.model), cfg,
                                root / 'baseline.pth')
    out['image'] = osp.join(data, 'JPEGImages-test', '00005.jpg')
    out['xml'] = osp.join(data, 'Annotations', 'Horizontal Bounding Boxes',
                          '00005.xml')
    return out


@pytest.fixture
def panels(visualize, monkeypatch):
    """The model names of the detections picture, as drawn."""
    names = []
    draw = visualize.draw_detections_side_by_side

    def spy(image, predictions, *args, **kwargs):
        names.extend(predictions)
        return draw(image, predictions, *args, **kwargs)

    monkeypatch.setattr(visualize, 'draw_detections_side_by_side', spy)
    return names


def png_shape(path):
    assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n', path
    return mmcv.imread(path).shape


def test_load_detector_takes_each_part_of_a_ds2d2_checkpoint(
        visualize, artefacts):
    saved = artefacts['ds2d2_state']
    for part, prefix in (('student', 'architecture.'),
                         ('teacher', 'teacher.')):
        model = visualize.load_detector(
            artefacts['ds2d2_cfg'], artefacts['ds2d2_ckpt'], part)
        state = model.state_dict()
        assert set(state) == {k[len(prefix):] for k in saved
                              if k.startswith(prefix)}
        for key, value in state.items():
            assert torch.equal(value, saved[prefix + key]), (part, key)
        assert model.dataset_meta['classes'] == DIOR_CLASSES
    # a plain config with the distillation checkpoint: its student
    model = visualize.load_detector(artefacts['student_cfg'],
                                    artefacts['ds2d2_ckpt'])
    assert torch.equal(model.state_dict()['bbox_head.retina_cls.weight'],
                       saved['architecture.bbox_head.retina_cls.weight'])


def test_run_detector_returns_features_and_prediction(visualize, artefacts):
    model = visualize.load_detector(artefacts['student_cfg'],
                                    artefacts['baseline_ckpt'])
    result = visualize.run_detector(model, artefacts['image'])
    assert [tuple(f.shape) for f in result.feats] == [
        (1, 16, s, s) for s in (8, 4, 2, 1, 1)]
    assert result.img_shape == (64, 64) and result.input_hw == (64, 64)
    np.testing.assert_allclose(result.scale_factor, (1, 1))
    boxes = result.prediction.pred_instances.bboxes
    assert len(boxes) and boxes.min() >= 0 and boxes.max() <= 64


def test_read_xml_boxes_as_xml_dataset(visualize, artefacts):
    boxes = visualize.read_xml_boxes(artefacts['xml'])
    dataset = DIORDataset(
        data_root=artefacts['data'], ann_file='ImageSets/Main/test.txt',
        img_subdir='JPEGImages-test',
        ann_subdir='Annotations/Horizontal Bounding Boxes',
        data_prefix=dict(sub_data_root=''), test_mode=True, pipeline=[])
    info = next(d for d in dataset if d['img_id'] == '00005')
    np.testing.assert_array_equal(
        boxes, np.array([i['bbox'] for i in info['instances']], np.float32))


def test_ground_truth_panel_holds_the_annotation(visualize, artefacts):
    boxes, names = visualize.read_xml_objects(artefacts['xml'])
    classes = sorted(set(names)) + ['unused']
    sample = visualize.ground_truth_sample(artefacts['xml'], classes)
    np.testing.assert_array_equal(sample.pred_instances.bboxes.numpy(),
                                  boxes)
    assert sample.pred_instances.labels.tolist() == [classes.index(n)
                                                     for n in names]
    assert sample.pred_instances.scores.tolist() == [1.0] * len(names)
    # objects of classes the model does not know are left out
    kept = visualize.ground_truth_sample(artefacts['xml'], [names[0]])
    assert len(kept.pred_instances) == names.count(names[0])


def test_ds2d2_checkpoint_with_baseline_and_ground_truth(
        visualize, artefacts, tmp_path, capsys, panels):
    out = tmp_path / 'vis'
    written = visualize.main([
        artefacts['ds2d2_cfg'], artefacts['ds2d2_ckpt'], artefacts['image'],
        '--out-dir', str(out), '--baseline-config', artefacts['student_cfg'],
        '--baseline-ckpt', artefacts['baseline_ckpt'], '--gt-xml',
        artefacts['xml'], '--level', '1', '--score-thr', '0'
    ])
    assert written == {name: str(out / f'{name}.png')
                       for name in ('bands', 'disw', 'detections')}
    assert png_shape(written['bands'])[:2] == (600, 1300)
    # ground truth / teacher / baseline / DS2D2 student, each enlarged from
    # 64 to 320
    assert panels == ['ground truth', 'teacher', 'baseline', 'DS2D2 student']
    height, width, _ = png_shape(written['detections'])
    assert width == 4 * 320 and height > 320
    assert png_shape(written['disw'])[2] == 3
    assert 'detections: ' in capsys.readouterr().out


def test_student_alone_skips_bands_and_disw(visualize, artefacts, tmp_path,
                                            capsys, panels):
    written = visualize.main([
        artefacts['student_cfg'], artefacts['ds2d2_ckpt'],
        artefacts['image'], '--out-dir', str(tmp_path)
    ])
    assert list(written) == ['detections']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['detections.png']
    assert png_shape(written['detections'])[1] == 320
    assert panels == ['DS2D2 student']  # named after the checkpoint
    printed = capsys.readouterr().out
    assert 'bands.png skipped: no teacher' in printed
    assert 'disw.png skipped' in printed


def test_disw_boxes_follow_the_resize(visualize, artefacts, tmp_path,
                                      monkeypatch, panels):
    """A 32x32 image is resized to 64x64: --boxes (image pixels) double."""
    image = str(tmp_path / 'small.jpg')
    mmcv.imwrite(np.full((32, 32, 3), 90, np.uint8), image)
    drawn = {}
    draw_disw = visualize.draw_disw

    def spy(image, boxes, grid_hw, input_hw, out_file):
        drawn.update(image=image, boxes=boxes, grid_hw=grid_hw,
                     input_hw=input_hw)
        drawn['fig'], drawn['map'] = draw_disw(image, boxes, grid_hw,
                                               input_hw, out_file)

    monkeypatch.setattr(visualize, 'draw_disw', spy)
    visualize.main([
        artefacts['student_cfg'], artefacts['baseline_ckpt'], image,
        '--out-dir', str(tmp_path / 'vis'), '--boxes', '2', '3', '10', '12',
        '--student-name', 'R-18'
    ])
    assert panels == ['R-18']
    assert drawn['image'].shape == (64, 64, 3)
    np.testing.assert_array_equal(drawn['boxes'], [[4, 6, 20, 24]])
    assert drawn['grid_hw'] == (4, 4) and drawn['input_hw'] == (64, 64)
    expected = disw_weights([torch.tensor([[4., 6., 20., 24.]])], (4, 4),
                            (64, 64))[0, 0].numpy()
    np.testing.assert_array_equal(drawn['map'], expected)
    assert (tmp_path / 'vis' / 'disw.png').is_file()


@pytest.mark.parametrize('extra,message', [
    (['--teacher-config', 'x.py'], '--teacher-config and --teacher-ckpt'),
    (['--baseline-ckpt', 'x.pth'], '--baseline-config and --baseline-ckpt'),
    (['--boxes', '1', '2', '3', '4', '5'], '4 numbers per box'),
])
def test_argument_errors(visualize, extra, message, capsys):
    with pytest.raises(SystemExit):
        visualize.parse_args(['c.py', 'c.pth', 'i.jpg', '--out-dir', 'o'] +
                             extra)
    assert message in capsys.readouterr().err
