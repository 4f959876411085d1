"""tools/benchmark.py and tools/bench/: the measurements see what they
measure (Timer's threads, autograd's saved tensors, the step's own
amplifier-head passes and RoI extractions), the figures and targets are
computed as documented, the options are checked, and the quick mode runs
every section and reports every row and target (whatever the timings: they
are not asserted)."""
import contextlib
import io
import json
import math
from collections import Counter

import pytest
import torch
from torch import nn

import benchmark  # tools/benchmark.py, on the path (conftest)
from bench import floor, memory, report, timing
from bench.inputs import grid_sizes, random_boxes
from bench.step import (available_detectors, build_algorithm, make_batch,
                        quiet_logs, step_cases, step_figures)

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


def test_median_time_takes_min_calls_of_a_call_longer_than_the_budget():
    import time
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.02)

    # 0.01 s of budget would time a single 20 ms call after the warm-up
    t = timing.median_time(slow, 0.01, min_calls=5)
    assert t == pytest.approx(0.02, rel=0.5)
    assert len(calls) >= 1 + 1 + 5  # the one-call probe, warm-up, 5 calls
    with pytest.raises(ValueError, match='min_calls=0: expected >= 1'):
        timing.median_time(slow, 0.01, min_calls=0)


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


# ----------------------------------------------------------------------------
# the floor: the amplifier-head passes of the step, and its RoI extractions


def test_with_backward_sends_ones_to_fresh_leaf_grads():
    x = torch.ones(3, requires_grad=True)
    run = floor.with_backward(lambda: [x * 2, x.sum() * 3], [x])
    run()
    run()  # grads are reset, not accumulated
    assert torch.equal(x.grad, torch.full((3, ), 5.0))


def test_without_grad_runs_the_forward_under_no_grad():
    seen = []
    floor.without_grad(lambda: seen.append(torch.is_grad_enabled()))()
    assert seen == [False]


def test_run_all_runs_each_pass_once_in_order():
    seen = []
    floor.run_all([lambda: seen.append(1), lambda: seen.append(2)])()
    assert seen == [1, 2]


def test_tensors_flattens_a_head_output():
    a, b, c = torch.zeros(1), torch.ones(1), torch.ones(2)
    assert floor.tensors(([a, b], [c])) == [a, b, c]


def test_an_unknown_head_part_is_an_error():
    with pytest.raises(ValueError, match="head_part 'mask_head'"):
        floor.head_forward('mask_head', nn.Identity(), lambda f: f, (),
                           None)


@pytest.fixture(scope='module')
def built():
    """Per detector built here: the quick algorithm and its batch."""
    out = {}
    with quiet_logs():
        for name in detectors():
            algorithm, _, num_classes = build_algorithm(
                name, True, 0, torch.device('cpu'))
            data = make_batch(algorithm, 64, 10, num_classes,
                              name.startswith('rotated'), 0,
                              torch.device('cpu'))
            out[name] = algorithm, data
    return out


def fingerprint(args) -> tuple:
    """Shapes and sums of a call's tensors (equal inputs: equal keys)."""
    flat = floor.tensors([a for a in args if isinstance(a, (torch.Tensor,
                                                           tuple, list))])
    return tuple((tuple(t.shape), float(t.detach().double().sum()))
                 for t in flat)


@contextlib.contextmanager
def recorded_calls(modules: dict):
    """Record each call of ``modules`` (label -> module): its label,
    whether grad is enabled, whether an input needs grad, and the
    fingerprint of its inputs."""
    calls, handles = [], []
    for label, module in modules.items():
        def hook(module, args, label=label):
            needs = any(t.requires_grad for t in floor.tensors(
                [a for a in args if isinstance(a, (torch.Tensor, tuple,
                                                   list))]))
            calls.append((label, torch.is_grad_enabled(), needs,
                          fingerprint(args)))
        handles.append(module.register_forward_pre_hook(hook))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def amplifier_modules(algorithm) -> dict:
    """label -> every module an amplifier loss of the step calls."""
    modules = {}
    for name, loss in algorithm.distiller.amplifier_losses():
        head = algorithm.distiller.amplifier_args[name].head
        if loss.head_part == 'roi_head':
            modules[f'{name}.extractor'] = head.bbox_roi_extractor
            modules[f'{name}.bbox_head'] = head.bbox_head
        else:
            modules[f'{name}.head'] = head
    return modules


def test_head_passes_make_the_steps_amplifier_calls(built):
    """The floor's passes call exactly the modules the step's amplifier
    losses call, as often, with grad as there, on equal inputs (the same
    features and RoIs)."""
    for name, (algorithm, data) in built.items():
        modules = amplifier_modules(algorithm)
        with recorded_calls(modules) as in_step:
            step_cases(algorithm, data)['ds2d2_step']()
        records = floor.amplifier_records(algorithm.distiller)
        passes = floor.head_passes(algorithm, records)
        with recorded_calls(modules) as in_floor:
            for fn in passes.values():
                fn()
        losses = [n for n, _ in algorithm.distiller.amplifier_losses()]
        assert len(losses) == 2, name  # full and high-frequency
        assert sorted(passes) == sorted(f'{n}/{side}' for n in losses
                                        for side in ('student', 'teacher'))
        # per loss: a student pass with grad, a teacher pass without
        per_module = 2 * len(losses) * (2 if name == 'faster-rcnn' else 1)
        assert len(in_step) == per_module, name
        assert Counter(in_floor) == Counter(in_step), name
        assert {(c[1], c[2]) for c in in_floor} == {(True, True),
                                                    (False, False)}


def test_roi_extractions_are_the_steps_own(built):
    if 'faster-rcnn' not in built:
        pytest.skip('Faster R-CNN cannot be built here')
    algorithm, data = built['faster-rcnn']
    modules = {'student': algorithm.student.roi_head.bbox_roi_extractor}
    for name, _ in algorithm.distiller.amplifier_losses():
        modules[name] = algorithm.distiller.amplifier_args[name] \
            .head.bbox_roi_extractor
    with recorded_calls(modules) as in_step:
        step_cases(algorithm, data)['ds2d2_step']()
    records = floor.amplifier_records(algorithm.distiller)
    passes, num_rois = floor.roi_extractions(algorithm, records)
    with recorded_calls(modules) as in_floor:
        floor.run_all(passes)()
    # the student's own, then two amplifiers x (student, teacher features)
    assert len(passes) == len(in_step) == 5
    sampled = records['loss_amp_full']['sampling_results']
    assert num_rois == sum(len(r.priors) for r in sampled) > 0
    # every extraction of the step takes the step's sampled RoIs
    assert all(call[3][-1][0] == (num_rois, 5) for call in in_step)
    assert Counter(in_floor) == Counter(in_step)
    assert Counter(c[0] for c in in_step) == dict(
        student=1, loss_amp_full=2, loss_amp_high=2)
    cases, covers = floor.floor_cases(algorithm, records)
    assert sorted(cases) == ['head_passes', 'roi_extractions']
    assert covers == dict(head_passes=4, extractions=5, rois=num_rois)


def test_dense_heads_have_no_roi_extractions(built):
    algorithm, data = built['retinanet']
    records = floor.step_records(algorithm, data)
    assert floor.roi_extractions(algorithm, records) == ([], 0)
    cases, covers = floor.floor_cases(algorithm, records)
    assert list(cases) == ['head_passes']
    assert covers == dict(head_passes=4, extractions=None, rois=None)


def test_a_mapping_without_the_features_is_an_error(built, monkeypatch):
    algorithm, _ = built['faster-rcnn']
    distiller = algorithm.distiller
    mappings = {k: dict(v) for k, v in
                distiller.loss_forward_mappings.items()}
    del mappings['loss_amp_high']['sampling_results']
    monkeypatch.setattr(distiller, 'loss_forward_mappings', mappings)
    with pytest.raises(KeyError, match=r"\['sampling_results'\], which "
                       'RoIAmplifierLoss takes'):
        floor.amplifier_records(distiller)


def test_step_figures_by_hand():
    times = dict(ds2d2_step=0.63, student_step=0.3, teacher_features=0.1,
                 head_passes=0.2, explicit_stream=0.0063,
                 roi_extractions=0.252)
    figures = step_figures(times)
    assert figures['floor_ms'] == pytest.approx(600)
    assert figures['floor_ratio'] == pytest.approx(0.63 / 0.6)  # 1.05
    assert figures['step_ratio'] == pytest.approx(0.63 / 0.4)
    assert figures['overhead_ms'] == pytest.approx(230)
    assert figures['stream_share'] == pytest.approx(0.01)
    assert figures['roi_share'] == pytest.approx(0.4)
    del times['roi_extractions']
    assert step_figures(times)['roi_share'] is None


def test_step_target_is_the_floor_ratio_for_every_detector():
    rows = [dict(detector=name, floor_ratio=ratio, step_ratio=2.5,
                 stream_share=0.01)
            for name, ratio in (('retinanet', 1.05), ('faster-rcnn', 1.06),
                                ('rotated-retinanet', 0.9))]
    step = [t for t in report.targets(dict(step=rows))
            if 'DS2D2 step /' in t['target']]
    assert [t['target'] for t in step] == [
        f'{r["detector"]}: DS2D2 step / (student step + teacher features '
        '+ head passes)' for r in rows]
    assert [t['measured'] for t in step] == [1.05, 1.06, 0.9]
    assert {t['limit'] for t in step} == {'<= 1.05'}
    assert [t['result'] for t in step] == ['PASS', 'FAIL', 'PASS']
    # no per-detector limits are left
    assert report.STEP_TARGET == 1.05
    assert not hasattr(report, 'step_limit')
    assert not hasattr(report, 'HEAD_SHARE')


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
    for row in results['step']:
        roi = row['detector'] == 'faster-rcnn'
        assert row['head_passes'] == 4
        assert row['floor_ms'] == pytest.approx(
            row['student_step_ms'] + row['teacher_features_ms'] +
            row['head_passes_ms'])
        assert row['floor_ratio'] == pytest.approx(
            row['ds2d2_step_ms'] / row['floor_ms'])
        assert row['step_ratio'] > row['floor_ratio']
        assert row['extractions'] == (5 if roi else None)
        assert (row['rois'] is not None) == roi
        assert (row['roi_extractions_ms'] is not None) == roi
        assert (row['roi_share'] is not None) == roi
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
    # the step target: the floor ratio, <= 1.05, for every detector
    for row in quick['results']['step']:
        target = next(t for t in targets if t['target'].startswith(
            f"{row['detector']}: DS2D2 step"))
        assert target['measured'] == row['floor_ratio']
        assert target['limit'] == '<= 1.05'


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
