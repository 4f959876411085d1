"""tools/gradient_shares.py: one tiny case, its shares against the plain
DS2D2 model's own gradient norms, the scale-free check, reuse, errors."""
import json
import os.path as osp

import pytest
import torch

import gradient_shares  # tools/gradient_shares.py, on the path (conftest)
from synthetic.data import make_synthetic_dior


@pytest.fixture(scope='module')
def out(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('shares'))
    # a small seed-0 train split where the tool looks for its data
    make_synthetic_dior(osp.join(out, 'data') + '/', num_trainval=16,
                        num_test=1, image_size=128,
                        classes=gradient_shares.CLASSES, seed=0)
    return out


def test_one_case_and_the_scale_free_check(out):
    args = ['--out', out, '--sizes', '64', '--detectors', 'retinanet',
            '--shapes', 'tiny']
    table = gradient_shares.main(args)
    with open(osp.join(out, 'gradient_shares.jsonl')) as f:
        cases = [json.loads(line) for line in f]
    assert len(cases) == 1
    case = cases[0]
    assert (case['detector'], case['shape'], case['weights'],
            case['size']) == ('retinanet', 'tiny', 'random', 64)
    # the same case, measured here with the hook's functions
    from mmrazor.registry import MODELS

    from ds2d2_mmrazor.engine import gradient_norms, split_terms
    cfg = gradient_shares.case_config('retinanet', 'tiny', 64,
                                      osp.join(out, 'data') + '/', out,
                                      None, False)
    assert cfg.model.type == 'DS2D2Distill'
    low = cfg.model.distiller.distill_losses.loss_spectral.low_weight
    assert low == 1e-5  # the authors' DIOR weights
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    batch = gradient_shares.first_batch(cfg)
    assert [s.metainfo['img_shape'] for s in batch['data_samples']] == \
        [(64, 64)] * 2
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    feats = list(model.distiller.get_record('fpn', from_student=True))
    norms = gradient_norms(split_terms(losses), feats)
    assert case['task'] == pytest.approx(norms['task'], rel=1e-4)
    for term in gradient_shares.TERMS:
        assert case[term] == pytest.approx(norms[term] / norms['task'],
                                           rel=1e-4), term
        assert case['scale_free'][term] == pytest.approx(1.0, abs=1e-4)
    assert '| tiny | random | loss_amp_high |' in table
    assert '| 64 px | 64 / 64 |' in table
    # a second invocation reuses the case
    mtime = osp.getmtime(osp.join(out, 'gradient_shares.jsonl'))
    gradient_shares.main(args)
    with open(osp.join(out, 'gradient_shares.jsonl')) as f:
        assert len(f.readlines()) == 1
    assert osp.getmtime(osp.join(out, 'gradient_shares.jsonl')) >= mtime


def test_real_shapes_keep_the_configs_models_without_downloads(out):
    cfg = gradient_shares.case_config('faster-rcnn', 'real', 400,
                                      osp.join(out, 'data') + '/', out,
                                      None, True)
    assert cfg.model.type == 'ScaleFreeDS2D2Distill'
    student, teacher = cfg.model.architecture, cfg.model.teacher
    assert (student.backbone.depth, teacher.backbone.depth) == (18, 101)
    assert student.neck.out_channels == 256
    assert student.backbone.init_cfg is None
    assert teacher.backbone.init_cfg is None
    # anchors follow the image size: 400 / 800 of the recipe's
    assert student.rpn_head.anchor_generator.scales == [4.0]


def test_trained_names_a_known_detector(out):
    with pytest.raises(ValueError, match=r"--trained names \['yolo'\]"):
        gradient_shares.main(['--out', out, '--trained', 'yolo=x'])
