"""tools/benchmark.py and tools/bench/: the measurements see what they
measure (Timer's threads, autograd's saved tensors), the options are
checked, and the quick mode runs every section and reports every row and
target (whatever the timings: they are not asserted)."""
import contextlib
import io
import json
import math

import pytest
import torch
from torch import nn

import benchmark  # tools/benchmark.py, on the path (conftest)
from bench import memory, report, timing
from bench.inputs import grid_sizes, random_boxes
from bench.step import available_detectors

# ----------------------------------------------------------------------------
# the measurements


def test_grid_sizes_are_the_haar_grids_of_the_fpn_levels():
    assert grid_sizes(800) == [(50, 50), (25, 25), (13, 13), (7, 7),
                               (4, 4)]
    assert grid_sizes(1024)[0] == (64, 64)


@pytest.mark.parametrize('rotated', [False, True])
def test_random_boxes_lie_in_the_image(rotated):
    generator = torch.Generator().manual_seed(0)
    boxes = random_boxes(500, 256, rotated, generator, 4, 64)
    assert boxes.shape == (500, 5 if rotated else 4)
    if rotated:
        assert ((boxes[:, :2] >= 0) & (boxes[:, :2] <= 256)).all()
        assert ((boxes[:, 2:4] >= 4 - 1e-4) &
                (boxes[:, 2:4] <= 64 + 1e-4)).all()
        assert (boxes[:, 4].abs() <= math.pi / 2).all()
    else:
        assert ((boxes >= 0) & (boxes <= 256)).all()
        assert (boxes[:, 2:] >= boxes[:, :2]).all()


def test_median_time_calls_fn_with_torch_threads():
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # Timer's own default would be 1
    try:
        t = timing.median_time(
            lambda: seen.append(torch.get_num_threads()), 0.01)
    finally:
        torch.set_num_threads(threads)
    assert t > 0 and len(seen) > 1 and set(seen) == {2}


def test_saved_bytes_sees_graphs_and_only_teacher_only_calls():
    teacher = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).requires_grad_(False)
    student = nn.Linear(8, 8)
    x = torch.randn(1 << 10, 8)
    with memory.saved_bytes() as frozen:
        teacher(x)
    with torch.no_grad(), memory.saved_bytes() as no_grad:
        student(x)
    with memory.saved_bytes() as graph:
        student(x).relu()
    assert frozen['bytes'] == no_grad['bytes'] == 0
    assert graph['bytes'] >= x.numel() * 4  # the input, for the weight

    # only calls of `teacher` with inputs that need no grad count: its
    # pass on student features (which need grad) saves, but is not counted
    teacher.requires_grad_(True)
    with memory.saved_bytes(list(teacher.modules())) as counted:
        teacher(student(x))  # counted: no call (input needs grad)
    assert counted['calls'] == 0 and counted['bytes'] == 0
    with memory.saved_bytes(list(teacher.modules())) as counted:
        teacher(x)  # a teacher-only call that keeps a graph
    # Sequential and Linear (ReLU's input needs grad: the Linear's output)
    assert counted['calls'] == 2 and counted['bytes'] >= x.numel() * 4


def test_peak_memory_is_not_measured_on_cpu():
    assert memory.peak_mb(lambda: torch.ones(10), torch.device('cpu')) \
        is None


@pytest.mark.parametrize('argv', [
    ['--sections', 'disw,speed'], ['--sections', ','],
    ['--detectors', 'retinanet,yolo'], ['--device', 'tpu'],
    ['--threads', '0']])
def test_bad_options_are_errors(argv, capsys):
    with pytest.raises(SystemExit) as error:
        benchmark.parse_args(argv)
    assert error.value.code == 2
    assert '--' + argv[0].lstrip('-') in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_cuda_without_cuda_is_an_error(capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--device', 'cuda'])
    assert 'CUDA is not available' in capsys.readouterr().err


# ----------------------------------------------------------------------------
# the quick mode, end to end


def run(argv):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = benchmark.main(argv)
    return results, printed.getvalue()


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp('benchmark') / 'bench.json'
    results, printed = run(['--quick', '--json', str(path)])
    with open(path) as f:
        saved = json.load(f)
    return dict(results=results, printed=printed, saved=saved)


def detectors():
    names, _ = available_detectors(list(benchmark.DETECTORS))
    return names


def test_every_disw_row(quick):
    opts = benchmark.settings(quick=True)
    rows = quick['results']['disw']
    keys = [(r['input'], r['box_type'], r['boxes']) for r in rows]
    assert sorted(keys) == sorted(
        (size, box_type, num) for size in opts['disw_sizes']
        for box_type in ('horizontal', 'rotated')
        for num in opts['disw_boxes'])
    # the quick mode measures the DISW target's own case
    assert (report.DISW_TARGET['input'], report.DISW_TARGET['boxes']) in \
        [(r['input'], r['boxes']) for r in rows]


def test_stream_step_and_memory_rows(quick):
    results = quick['results']
    assert [r['input'] for r in results['stream']] == [
        benchmark.settings(quick=True)['stream_size']]
    names = detectors()
    # the repository's RetinaNet and Faster R-CNN always; rotated RetinaNet
    # with MMRotate
    assert {'retinanet', 'faster-rcnn'} <= set(names)
    assert [r['detector'] for r in results['step']] == names
    assert [r['detector'] for r in results['memory']] == names
    for row in results['memory']:
        # CPU: peak memory not measured
        assert row['student_peak_mb'] is row['ds2d2_peak_mb'] is \
            row['peak_ratio'] is None
        assert row['teacher_saved_grad_mb'] > 0  # the control sees a graph
        assert row['step_teacher_only_calls'] > 0


def test_figures_are_finite_and_positive(quick):
    results = quick['results']
    # may be 0 or negative: the overhead (noise), saved memory, counts
    signed = ('overhead_ms', 'saved', 'calls')
    for section in ('disw', 'stream', 'step', 'memory'):
        assert results[section], section
        for row in results[section]:
            for key, value in row.items():
                if isinstance(value, str) or value is None:  # None: n/a
                    continue
                assert math.isfinite(value), (section, key)
                if not any(s in key for s in signed):
                    assert value > 0, (section, key, value)


def test_json_has_the_same_content(quick):
    assert quick['saved'] == json.loads(json.dumps(quick['results']))


def test_targets_each_with_a_ratio_and_a_verdict(quick):
    targets = quick['results']['targets']
    names = [t['target'] for t in targets]
    expected = ['DISW speed-up']
    for name in detectors():
        expected += [f'{name}: explicit stream', f'{name}: DS2D2 step',
                     f'{name}: teacher-only passes']
    assert len(names) == len(expected)
    for prefix in expected:
        assert sum(n.startswith(prefix) for n in names) == 1, prefix
    for target in targets:
        assert math.isfinite(target['measured'])
        assert target['result'] in ('PASS', 'FAIL')
    # printed: every section's table and footnote, then each target's line
    printed = quick['printed']
    for text in (*report.TITLES.values(), *report.FOOTNOTES.values()):
        assert text in printed, text
    lines = printed[printed.index('\nTargets\n'):].splitlines()
    for target in targets:
        line = next(x for x in lines if x.startswith(target['target']))
        assert line.split()[-1] == target['result']
        assert f"{target['measured']:.3f}" in line


def test_sections_and_detectors_are_honoured():
    results, printed = run(['--quick', '--sections', 'step',
                            '--detectors', 'retinanet'])
    assert [r['detector'] for r in results['step']] == ['retinanet']
    assert results['memory'] == [] and 'disw' not in results and \
        'stream' not in results
    assert [t['target'].split(':')[0] for t in results['targets']] == \
        ['retinanet'] * 2
    assert report.TITLES['step'] in printed
    assert report.TITLES['disw'] not in printed
    assert report.TITLES['memory'] not in printed
