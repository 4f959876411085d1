"""tools/demo.py (`make demo`) end to end, in a quick setting: it trains all
five stages, prints the table and writes the pictures; a second run reuses
the finished stages."""
import os.path as osp

import cv2

import demo  # tools/demo.py, on the path (conftest)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


ROWS = ('teacher (R-101 recipe)', 'student + DS2D2', 'student alone',
        'student + PKD')
PICTURES = ('bands.png', 'detections.png', 'disw.png') + tuple(
    f'losses_{stage}.png' for stage in demo.STAGES)


def rows_of(report):
    lines = report.splitlines()
    assert lines[0].split() == ['model', 'params', 'AP50', 'mAP', 'train',
                                'time']
    return {line[:22].strip(): line[22:].split() for line in lines[2:]}


def test_demo_trains_every_stage_prints_the_table_and_draws(tmp_path,
                                                            capsys):
    out = str(tmp_path / 'demo')
    args = ['--out', out, '--epochs', '1', '--num-trainval', '8',
            '--num-test', '8']
    rows = rows_of(demo.main(args))
    assert tuple(rows) == ROWS
    for label, (params, _, ap50, mAP, seconds, unit) in rows.items():
        assert 0 <= float(ap50) <= 1 and 0 <= float(mAP) <= float(ap50)
        assert unit == 's' and float(seconds) > 0
    # the three students deploy the same architecture; the teacher is larger
    students = {rows[r][0] for r in ROWS[1:]}
    assert len(students) == 1
    assert float(rows[ROWS[0]][0]) > float(students.pop())
    for name in PICTURES:
        image = cv2.imread(osp.join(out, 'pictures', name))
        assert image is not None and min(image.shape[:2]) > 100, name
    # the distilled checkpoint, converted to a plain student detector
    assert osp.isfile(osp.join(out, 'ds2d2_student.pth'))
    printed = capsys.readouterr().out
    assert 'tools/train.py' in printed  # the commands it runs are shown

    again = rows_of(demo.main(args))
    assert all(' '.join(r[-2:]) == 'earlier run' for r in again.values())
    assert {k: v[:4] for k, v in again.items()} == \
        {k: v[:4] for k, v in rows.items()}
