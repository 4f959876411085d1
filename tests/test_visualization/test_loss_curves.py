"""loss_curves / plot_losses on hand-written MMEngine scalars.json files."""
import json

import mmcv
import pytest

from ds2d2_mmrazor.visualization import loss_curves, plot_losses

DISTILL = [
    {'lr': 1e-4, 'data_time': 0.1, 'loss': 3.5, 'student.loss_cls': 1.0,
     'student.loss_bbox': 2.0, 'distill.loss_low': 3e-5,
     'distill.loss_amp_full': 0.5, 'time': 0.2, 'epoch': 1, 'iter': 10,
     'step': 10},
    {'lr': 2e-4, 'data_time': 0.1, 'loss': 2.25, 'student.loss_cls': 0.5,
     'student.loss_bbox': 1.5, 'distill.loss_low': 2e-5,
     'distill.loss_amp_full': 0.25, 'time': 0.2, 'epoch': 1, 'iter': 20,
     'step': 20},
    {'coco/bbox_mAP': 0.1, 'coco/bbox_mAP_50': 0.2, 'data_time': 0.01,
     'time': 0.02, 'step': 1},
    {'lr': 3e-4, 'data_time': 0.1, 'loss': 1.125, 'student.loss_cls': 0.25,
     'student.loss_bbox': 0.75, 'distill.loss_low': 1e-5,
     'distill.loss_amp_full': 0.125, 'time': 0.2, 'epoch': 2, 'iter': 30,
     'step': 30},
]
PLAIN = [
    {'lr': 1e-4, 'loss': 2.0, 'loss_cls': 1.5, 'loss_bbox': 0.5, 'epoch': 1,
     'iter': 5, 'step': 5},
    {'lr': 1e-4, 'loss': 1.0, 'loss_cls': 0.6, 'loss_bbox': 0.4, 'epoch': 1,
     'iter': 10, 'step': 10},
]


def write(path, records, extra=''):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records) + extra)
    return str(path)


def test_distillation_run_curves(tmp_path):
    curves = loss_curves(write(tmp_path / 'scalars.json', DISTILL, '\n'))
    assert list(curves) == ['task loss', 'distill.loss_low',
                            'distill.loss_amp_full']
    # the validation line is skipped; task loss = sum of student.* losses
    assert curves['task loss'] == ([10, 20, 30], [3.0, 2.0, 1.0])
    assert curves['distill.loss_low'] == ([10, 20, 30], [3e-5, 2e-5, 1e-5])
    assert curves['distill.loss_amp_full'] == ([10, 20, 30],
                                               [0.5, 0.25, 0.125])


def test_plain_run_task_loss_is_the_total(tmp_path):
    curves = loss_curves(write(tmp_path / 'scalars.json', PLAIN))
    assert curves == {'task loss': ([5, 10], [2.0, 1.0])}


def test_plot_one_subplot_per_run(tmp_path):
    files = {'DS2D2 student': write(tmp_path / 'a.json', DISTILL),
             'baseline': write(tmp_path / 'b.json', PLAIN)}
    out = tmp_path / 'losses.png'
    fig, series = plot_losses(files, str(out))
    assert series == {name: loss_curves(path)
                      for name, path in files.items()}
    assert [ax.get_title() for ax in fig.axes] == ['DS2D2 student',
                                                   'baseline']
    for ax, curves in zip(fig.axes, series.values()):
        assert ax.get_yscale() == 'log'
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == list(curves)
        for line, (xs, ys) in zip(lines, curves.values()):
            assert list(line.get_xdata()) == xs
            assert list(line.get_ydata()) == ys
    assert mmcv.imread(str(out)).shape[2] == 3


def test_no_training_lines_is_a_clear_error(tmp_path):
    path = write(tmp_path / 'scalars.json', [DISTILL[2]])
    with pytest.raises(ValueError, match=r'has no training loss lines .*'
                       r"found 1 lines with keys \['coco/bbox_mAP'"):
        loss_curves(path)
    with pytest.raises(ValueError, match='no training loss lines'):
        plot_losses({'val only': path})


def test_not_json_names_the_line(tmp_path):
    path = write(tmp_path / 'scalars.json', PLAIN, 'not json\n')
    with pytest.raises(ValueError, match=r'scalars.json:3 is not a JSON'):
        loss_curves(path)
