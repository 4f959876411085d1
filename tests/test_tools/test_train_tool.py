"""tools/train.py turns its flags into the config, and refuses --amp where
MMEngine cannot run it (CPU) with a message instead of an assertion."""
import os.path as osp

import pytest
import torch

from train import build_config, parse_args

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs',
                  'ds2d2_retina_r18_r101_dior.py')


def test_flags_reach_the_config(tmp_path):
    cfg = build_config(parse_args([
        CONFIG, '--work-dir', str(tmp_path), '--resume', '--auto-scale-lr',
        '--cfg-options', 'model.teacher_ckpt=t.pth', 'randomness.seed=3']))
    assert cfg.work_dir == str(tmp_path) and cfg.resume is True
    assert cfg.auto_scale_lr.enable is True
    assert cfg.model.teacher_ckpt == 't.pth' and cfg.randomness.seed == 3
    default = build_config(parse_args([CONFIG]))
    assert default.work_dir == osp.join('work_dirs',
                                        'ds2d2_retina_r18_r101_dior')
    assert default.resume is False


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU case')
def test_amp_on_cpu_is_refused_clearly():
    with pytest.raises(ValueError, match='--amp needs a GPU.*train without '
                       '--amp'):
        build_config(parse_args([CONFIG, '--amp']))
