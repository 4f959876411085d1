"""tools/plot_losses.py in-process on hand-written scalars.json files."""
import importlib
import json
import os.path as osp

import mmcv
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECORDS = [
    {'loss': 2.0, 'student.loss_cls': 1.5, 'student.loss_bbox': 0.25,
     'distill.loss_low': 2e-5, 'iter': 1, 'step': 1},
    {'loss': 1.0, 'student.loss_cls': 0.5, 'student.loss_bbox': 0.25,
     'distill.loss_low': 1e-5, 'iter': 2, 'step': 2},
    {'coco/bbox_mAP': 0.0, 'step': 1},
]


@pytest.fixture(scope='module')
def tool():
    return importlib.import_module('plot_losses')  # tools/ is on the path


def scalars(root, work_dir, timestamp='20250101_000000'):
    path = root / work_dir / timestamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in RECORDS))
    return str(path)


def test_writes_one_subplot_per_run(tool, tmp_path, capsys):
    files = [scalars(tmp_path, 'ds2d2_retina_r18_r101_dior'),
             scalars(tmp_path, 'retinanet_r18_fpn_2x_dior')]
    out = tmp_path / 'plots' / 'losses.png'
    assert tool.main(files + ['--out', str(out)]) == str(out)
    assert mmcv.imread(str(out)).shape[:2] == (700, 800)  # 2 x (8 x 3.5)
    assert capsys.readouterr().out.strip() == (
        f'{out}: ds2d2_retina_r18_r101_dior, retinanet_r18_fpn_2x_dior')


def test_names_and_duplicates(tool, tmp_path, capsys):
    files = [scalars(tmp_path, 'run', '1'), scalars(tmp_path, 'run', '2')]
    tool.main(files + ['--out', str(tmp_path / 'a.png')])
    assert f'run ({files[0]}), run ({files[1]})' in capsys.readouterr().out
    tool.main(files + ['--out', str(tmp_path / 'b.png'), '--names', 'x',
                       'y'])
    assert capsys.readouterr().out.strip().endswith('b.png: x, y')
    with pytest.raises(SystemExit):
        tool.main(files + ['--out', 'c.png', '--names', 'x'])
    assert '--names gives 1 names for 2 files' in capsys.readouterr().err


def test_a_validation_only_file_is_an_error(tool, tmp_path):
    path = tmp_path / 'scalars.json'
    path.write_text(json.dumps(RECORDS[2]) + '\n')
    with pytest.raises(ValueError, match='no training loss lines'):
        tool.main([str(path), '--out', str(tmp_path / 'x.png')])
