"""tools/benchmark.py: the per-box reference loops agree with disw_weights
(the honesty check of the DISW comparison), the memory measurement sees
allocations and graphs, and the quick mode runs every section and reports
every row and target (whatever the timings: they are not asserted)."""
import contextlib
import io
import json
import math

import pytest
import torch

import benchmark  # tools/benchmark.py, on the path (conftest)
from ds2d2_mmrazor.ops import disw_weights

# ----------------------------------------------------------------------------
# the reference loops


def test_horizontal_loop_matches_disw_weights_on_hand_boxes():
    boxes = torch.tensor([
        [0., 0., 16., 16.],     # edges on grid lines: the ceil row / col too
        [3., 5., 9., 30.],      # inside
        [-10., 50., 20., 80.],  # partly outside (clipped)
        [60., 60., 90., 90.],   # crosses the bottom-right border
        [70., 0., 80., 4.],     # fully outside the right border
        [10., 10., 10.5, 10.5],  # smaller than a cell
    ])
    for grid in ((8, 8), (5, 7), (1, 1)):
        expected = disw_weights([boxes], grid, (64, 64))
        got = benchmark.disw_loop([boxes], grid, (64, 64))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # each box inside the grid has mass 1: ceil row / col included
    one = benchmark.disw_loop([boxes[:1]], (8, 8), (64, 64))
    assert (one > 1).sum() == 9 and math.isclose(float((one - 1).sum()), 1,
                                                 rel_tol=1e-6)


def test_rotated_loop_matches_disw_weights_on_hand_boxes():
    boxes = torch.tensor([
        [32., 32., 40., 10., 0.],            # axis-aligned
        [20., 40., 30., 8., math.pi / 6],
        [50., 12., 25., 6., -math.pi / 3],
        [33., 33., 1., 1., 0.3],             # between cell centres: fallback
        [70., 30., 1., 1., 0.],              # centre off the grid: nothing
        [2., 2., 20., 20., math.pi / 4],     # crosses the top-left corner
    ])
    for grid in ((8, 8), (6, 9), (2, 2)):
        expected = disw_weights([boxes], grid, (64, 72))
        got = benchmark.disw_loop([boxes], grid, (64, 72))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize('rotated', [False, True])
def test_loops_match_disw_weights_on_random_batches(rotated):
    generator = torch.Generator().manual_seed(3)
    boxes = [benchmark.random_boxes(n, 256, rotated, generator)
             for n in (40, 0, 7)]
    for grid in benchmark.grid_sizes(256):
        torch.testing.assert_close(
            benchmark.disw_loop(boxes, grid, (256, 256)),
            disw_weights(boxes, grid, (256, 256)), rtol=0, atol=1e-6)


def test_grid_sizes_are_the_haar_grids_of_the_fpn_levels():
    assert benchmark.grid_sizes(800) == [(50, 50), (25, 25), (13, 13),
                                         (7, 7), (4, 4)]
    assert benchmark.grid_sizes(1024)[0] == (64, 64)


# ----------------------------------------------------------------------------
# the measurements


def test_memory_use_sees_allocations_and_graphs():
    cpu = torch.device('cpu')
    peak, held, out = benchmark.memory_use(
        lambda: torch.ones(1 << 20)[:10], cpu)  # 4 MiB kept by the view
    assert held == peak == 4 << 20 and benchmark.tensor_bytes(out) == held

    weight = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(1 << 14, 8)

    def chain():
        return (x @ weight).relu() @ weight

    with torch.no_grad():
        no_graph, _ = benchmark.held_beyond_output(chain, cpu)
    graph, size = benchmark.held_beyond_output(chain, cpu)
    assert no_graph == 0
    assert graph >= size == x.numel() * 4  # the saved intermediate


def test_median_times_runs_warmup_and_repeats():
    calls = []
    times = benchmark.median_times(dict(a=lambda: calls.append('a'),
                                        b=lambda: calls.append('b')),
                                   warmup=1, repeats=3,
                                   device=torch.device('cpu'))
    assert calls == ['a', 'b'] * 4  # round robin
    assert set(times) == {'a', 'b'} and all(t >= 0 for t in times.values())


def test_unknown_section_is_an_error():
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--sections', 'disw,speed'])


# ----------------------------------------------------------------------------
# the quick mode, end to end


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp('benchmark') / 'bench.json'
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = benchmark.main(['--quick', '--json', str(path)])
    with open(path) as f:
        saved = json.load(f)
    return dict(results=results, printed=printed.getvalue(), saved=saved)


def detectors():
    names, _ = benchmark.available_detectors(list(benchmark.DETECTORS))
    return names


def test_every_disw_row(quick):
    opts = benchmark.settings(quick=True)
    rows = quick['results']['disw']
    keys = [(r['input'], r['box_type'], r['boxes']) for r in rows]
    assert sorted(keys) == sorted(
        (size, box_type, num) for size in opts['disw_sizes']
        for box_type in ('horizontal', 'rotated')
        for num in opts['disw_boxes'])
    assert len(quick['results']['disw_scaling']) == \
        2 * len(opts['disw_sizes'])


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
        # the student's own assignments happen once per step
        assert row['ds2d2_assign_calls'] == row['student_assign_calls'] > 0
        assert row['ds2d2_syncs'] is None  # counted on CUDA only


def test_figures_are_finite_and_positive(quick):
    results = quick['results']
    # may be 0 or negative: the overhead (noise), slopes, held memory,
    # counts, the anchor time of RoI heads
    signed = ('overhead_ms', 'slope', 'held', 'calls', 'generations',
              'anchor_generation_ms', 'saved')
    for section in ('disw', 'disw_scaling', 'stream', 'step', 'memory'):
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
    expected = ['DISW speed-up', 'DISW time vs box count']
    for name in detectors():
        expected += [f'{name}: explicit stream', f'{name}: DS2D2 step',
                     f'{name}: teacher-only passes']
    assert len(names) == len(expected)
    for prefix in expected:
        assert sum(n.startswith(prefix) for n in names) == 1, prefix
    for target in targets:
        assert math.isfinite(target['measured'])
        assert target['result'] in ('PASS', 'FAIL')
    # printed: every section's table, then each target's line
    printed = quick['printed']
    for title in benchmark.TITLES.values():
        assert title in printed, title
    lines = printed[printed.index('\nTargets\n'):].splitlines()
    for target in targets:
        line = next(x for x in lines if x.startswith(target['target']))
        assert line.split()[-1] == target['result']
        assert f"{target['measured']:.3f}" in line
