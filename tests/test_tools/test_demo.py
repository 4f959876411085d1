"""tools/demo.py (`make demo`) end to end, in a quick setting: it trains all
its runs, prints the table with the teacher-student gap and writes the
pictures; a second run reuses the finished runs."""
import os.path as osp

import cv2

import demo  # tools/demo.py, on the path (conftest)

ROWS = ('teacher (R-101 recipe)', 'student alone', 'student + DS2D2',
        'student + CrossKD', 'student + CWD')
PICTURES = ('bands.png', 'detections.png', 'disw.png') + tuple(
    f'losses_{run}.png' for run in demo.RUNS)


def rows_of(report):
    lines = report.splitlines()
    assert lines[0].split() == ['model', 'params', 'test', 'AP50', 'test',
                                'mAP', 'val', 'AP50', 'train', 'time']
    return {line[:22].strip(): line[22:].split() for line in lines[2:7]}


def test_demo_trains_every_run_prints_the_table_and_draws(tmp_path, capsys):
    out = str(tmp_path / 'demo')
    args = ['--out', out, '--epochs', '1', '--teacher-epochs', '1',
            '--num-trainval', '16', '--num-test', '8', '--image-size', '64',
            '--pretrain-images', '8', '--pretrain-epochs', '1']
    report = demo.main(args)
    rows = rows_of(report)
    assert tuple(rows) == ROWS
    for label, (params, _, ap50, map_, val_ap50, seconds, unit) in \
            rows.items():
        assert 0 <= float(ap50) <= 1 and 0 <= float(map_) <= float(ap50)
        assert 0 <= float(val_ap50) <= 1
        assert unit == 's' and float(seconds) > 0
    # the students deploy the same architecture; the teacher is larger
    students = {rows[r][0] for r in ROWS[1:]}
    assert len(students) == 1
    assert float(rows[ROWS[0]][0]) > float(students.pop())
    gap = float(rows[ROWS[0]][2]) - float(rows['student alone'][2])
    assert f'teacher - student alone: {gap:+.3f}' in report
    for name in PICTURES:
        image = cv2.imread(osp.join(out, 'pictures', name))
        assert image is not None and min(image.shape[:2]) > 100, name
    # ground truth + teacher + student alone + DS2D2 student, side by side
    detections = cv2.imread(osp.join(out, 'pictures', 'detections.png'))
    assert detections.shape[1] == 4 * 320
    # the distilled checkpoint, converted to a plain student detector
    assert osp.isfile(osp.join(out, 'ds2d2_student.pth'))
    assert 'training' in capsys.readouterr().out

    again = rows_of(demo.main(args))
    assert all(' '.join(r[-2:]) == 'earlier run' for r in again.values())
    assert {k: v[:5] for k, v in again.items()} == \
        {k: v[:5] for k, v in rows.items()}
