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


def test_oriented_box_config_without_mmrotate_says_what_to_install(
        monkeypatch):
    import train

    def fromfile(path):  # what MMEngine raises for an `mmrotate::` base
        raise ModuleNotFoundError(
            'mmrotate is not installed, please install mmrotate manually')

    monkeypatch.setattr(train.Config, 'fromfile', fromfile)
    with pytest.raises(ModuleNotFoundError, match=r'rotated.py is an '
                       r'oriented-box config and needs MMRotate.*`make '
                       r'install`.*pip install -e \.\[rotated\]'):
        train.load_config('rotated.py')

    def other(path):
        raise ModuleNotFoundError('No module named yaml')

    monkeypatch.setattr(train.Config, 'fromfile', other)
    with pytest.raises(ModuleNotFoundError, match='^No module named yaml$'):
        train.load_config('any.py')
