"""tools/gpu_check.sh and tools/gpu_check.py: the CPU dry run of the GPU
check runs every check and reports what it measured; its parts count,
compare and fail as documented; the carried wheels cover the stack."""
import importlib.metadata
import json
import os
import os.path as osp
import re
import subprocess
import sys
import sysconfig

import pytest
import torch
from packaging.requirements import Requirement

import gpu_check  # tools/gpu_check.py, on the path (conftest)
from gpu_check import (CheckFailed, CountSyncCalls, Skip, logged_terms,
                       missing_ds2d2_terms, relative_differences, run_check)

from ..conftest import HAS_MMROTATE

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'gpu_check.sh')
DETECTORS = ('retinanet', 'faster-rcnn', 'rotated-retinanet')
#: the detectors this stack builds (the mmdet 3.3 stack has no MMRotate)
BUILT = DETECTORS if HAS_MMROTATE else DETECTORS[:2]


# ---------------------------------------------------------------------------
# the dry run, end to end


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu_check')
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    env.pop('OUT', None)
    proc = subprocess.run(
        ['bash', SCRIPT, '--device', 'cpu', '--out', str(out), '--',
         '--stage-detectors', 'retinanet'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    with open(out / 'gpu_check.json') as f:
        summary = json.load(f)
    return proc, summary, {c['name']: c for c in summary['checks']}


def test_dry_run_passes_and_lists_every_check(dry_run):
    proc, summary, checks = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary['ok'] is True
    assert list(checks) == (
        ['env', 'disw']
        + [f'{c}/{d}' for d in DETECTORS for c in ('terms', 'syncs')]
        + ['stages/retinanet/fp32', 'stages/retinanet/amp', 'benchmark'])
    for name, row in checks.items():  # what this stack cannot build
        if name.split('/')[-1] in set(DETECTORS) - set(BUILT):
            assert row['status'] == 'skipped'
            assert row['error'] == 'mmrotate is not installed'
    assert summary['meta']['device'] == 'cpu'
    assert summary['meta']['stage_detectors'] == ['retinanet']
    # the table at the end names each check and its status
    table = proc.stdout[proc.stdout.index('check '):]
    for name, row in checks.items():
        assert re.search(rf'^{re.escape(name)}\s+{row["status"]}\b', table,
                         re.M), name
    assert 'all checks passed' in proc.stdout


def test_dry_run_stages_log_finite_ds2d2_terms(dry_run):
    _, _, checks = dry_run
    fp32 = checks['stages/retinanet/fp32']
    assert fp32['status'] == 'passed'
    figures = fp32['figures']
    assert set(figures['iterations']) == {'teacher', 'amplifier', 'student'}
    assert all(n >= 2 for n in figures['iterations'].values())
    student = figures['student']
    assert not missing_ds2d2_terms(student)
    assert all(v == v and abs(v) < float('inf') for v in student.values())
    assert 'student.loss_cls' in student and 'loss' in student
    amp = checks['stages/retinanet/amp']
    assert amp['status'] == 'skipped'
    assert 'AmpOptimWrapper' in amp['error']


def test_dry_run_terms_are_reproducible_on_the_cpu(dry_run):
    _, _, checks = dry_run
    for detector in BUILT:
        figures = checks[f'terms/{detector}']['figures']
        # the CPU against itself: same weights, batch and seed, same terms
        assert figures['cpu'] == figures['device']
        assert set(figures['relative'].values()) == {0.0}
        assert not missing_ds2d2_terms(figures['cpu'])
    retina = checks['terms/retinanet']['figures']
    assert retina['autocast_dtype'] == 'torch.bfloat16'
    assert set(retina['autocast']) == set(retina['cpu'])
    # two-stage detectors: mmcv's CPU nms takes float32 only
    assert 'not run' in checks['terms/faster-rcnn']['figures']['autocast']


def test_dry_run_disw_and_syncs(dry_run):
    _, _, checks = dry_run
    cases = checks['disw']['figures']['cases']
    assert len(cases) == 12
    assert all(c['device_vs_cpu'] == 0 for c in cases)
    assert all(c['cpu_vs_reference'] <= gpu_check.DISW_ATOL
               for c in cases if c['boxes'] <= 100)
    for detector in BUILT:
        figures = checks[f'syncs/{detector}']['figures']
        small, large = (figures['ds2d2_added'][str(n)]
                        for n in gpu_check.SYNC_OBJECTS)
        assert small == large and 0 < large['calls'] < 40
        sites = figures['50_objects']['ds2d2_step']['call_sites']
        assert any(s.startswith(f'ds2d2_mmrazor{os.sep}ops{os.sep}disw.py')
                   for s in sites)


def test_dry_run_benchmark_reports_the_quick_step(dry_run):
    _, _, checks = dry_run
    quick = checks['benchmark']['figures']['quick']
    assert quick['meta']['device'] == 'cpu'
    assert [r['detector'] for r in quick['step']] == ['retinanet']
    step = quick['step'][0]
    assert step['floor_ratio'] > 0
    assert 'full_step' not in checks['benchmark']['figures']
    # the headline and the step target: the floor ratio and 1.05
    assert checks['benchmark']['figures']['headline'] == (
        f"quick step / floor {step['floor_ratio']:.2f} (target <= 1.05)")
    target = next(t for t in quick['targets']
                  if t['target'].startswith('retinanet: DS2D2 step'))
    assert target['measured'] == step['floor_ratio']
    assert target['limit'] == '<= 1.05'


def test_benchmark_headline_of_the_full_step(monkeypatch):
    import benchmark
    step = dict(detector='retinanet', input=512, ds2d2_step_ms=1260.0,
                student_step_ms=700.0, teacher_features_ms=200.0,
                head_passes_ms=300.0, floor_ms=1200.0, floor_ratio=1.05,
                step_ratio=1.4)
    argvs = []

    def main(argv):
        argvs.append(argv)
        return dict(step=[step])

    monkeypatch.setattr(benchmark, 'main', main)
    figures = gpu_check.check_benchmark('cuda', 'full')
    assert argvs == [['--device', 'cuda', '--quick'],
                     ['--device', 'cuda', '--sections', 'step',
                      '--detectors', 'retinanet', '--step-time', '5']]
    assert figures['headline'] == (
        'RetinaNet 512 px: step 1260 ms / floor 1200 ms (student 700, '
        'teacher 200, heads 300) = 1.05, target <= 1.05')


# ---------------------------------------------------------------------------
# the parts


def test_sync_calls_are_counted_where_a_gpu_would_wait():
    x = torch.randn(10)
    mode = CountSyncCalls()
    with mode:
        x[0].item()
        if x.sum() > 0:  # __bool__
            pass
        x[x > 0]  # boolean mask
        torch.nonzero(x > 0)
        torch.where(x > 0)  # one argument: nonzero
        x.tolist()
        x[x < 0] = 0  # boolean mask assignment
        int(x[0])
        # none of these waits
        torch.where(x > 0, x, 0)
        x[2:5] + x.sum() * 2
        x[torch.tensor([1, 2])]
        x.to(torch.float64)
    assert mode.count == 8
    assert set(mode.sites) == {'other'}  # this file is no OpenMMLab code


def test_relative_differences():
    rel = relative_differences({'a': 1.001, 'b': 0.0, 'c': -2.0},
                               {'a': 1.0, 'b': 0.0, 'c': -2.0})
    assert rel['a'] == pytest.approx(1e-3) and rel['b'] == rel['c'] == 0
    with pytest.raises(CheckFailed, match=r"different terms: \['d'\]"):
        relative_differences({'a': 1.0, 'd': 1.0}, {'a': 1.0})


def test_run_check_records_pass_skip_and_failure():
    ok = run_check('ok', lambda: dict(headline='h', value=3))
    assert ok['status'] == 'passed' and ok['figures']['value'] == 3

    def skip():
        raise Skip('not here')

    def fail():
        raise CheckFailed('wrong by 2')

    skipped, failed = run_check('s', skip), run_check('f', fail)
    assert skipped['status'] == 'skipped' and skipped['error'] == 'not here'
    assert failed['status'] == 'failed'
    assert failed['error'] == 'CheckFailed: wrong by 2'
    assert 'wrong by 2' in failed['traceback']
    assert all(r['seconds'] >= 0 for r in (ok, skipped, failed))


def test_a_failed_check_fails_the_run(tmp_path, monkeypatch):
    def broken():
        raise RuntimeError('expected scalar type Float')

    monkeypatch.setattr(gpu_check, 'plan', lambda args: [
        ('fine', lambda: dict(headline='fine')), ('broken', broken)])
    assert gpu_check.main(['--device', 'cpu', '--out', str(tmp_path)]) == 1
    summary = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert summary['ok'] is False
    assert [c['status'] for c in summary['checks']] == ['passed', 'failed']
    assert 'expected scalar type Float' in summary['checks'][1]['error']


@pytest.mark.parametrize('argv, message', [
    (['--detectors', 'yolo'], "--detectors: unknown ['yolo']"),
    (['--stage-detectors', ''], '--stage-detectors: unknown (none)'),
    (['--skip', 'stages,gpu'], "--skip: unknown ['gpu']"),
])
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['--device', 'cpu'] + argv)
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU case')
def test_cuda_without_a_gpu_is_refused(capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['--device', 'cuda'])
    assert '--device cpu for the dry run' in capsys.readouterr().err


def test_logged_terms_reads_every_training_iteration(tmp_path):
    log = tmp_path / '20261127_120000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    lines = [dict(lr=0.1, loss=2.0, **{'student.loss_cls': 1.5,
                                      'distill.loss_low': 0.5}, iter=1),
             dict(loss=float('nan'), iter=2),
             {'coco/bbox_mAP': 0.1, 'step': 1}]  # an evaluation
    log.write_text('\n'.join(json.dumps(r) for r in lines) + '\n')
    terms = logged_terms(str(tmp_path))
    assert terms[0] == {'loss': 2.0, 'student.loss_cls': 1.5,
                        'distill.loss_low': 0.5}
    assert len(terms) == 2 and terms[1]['loss'] != terms[1]['loss']


def test_missing_ds2d2_terms():
    names = ['loss', 'distill.loss_low', 'distill.loss_high',
             'distill.loss_amp_full.cls', 'student.loss_amp_high']
    assert missing_ds2d2_terms(names) == ['loss_amp_high']


# ---------------------------------------------------------------------------
# the shell script


def script_array(name: str):
    with open(SCRIPT) as f:
        text = f.read()
    match = re.search(rf'^{name}=\(([^)]*)\)', text, re.M)
    assert match, name
    return match.group(1).split()


def _key(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def installed_requires(name: str):
    """A distribution's requirements as installed in this interpreter's
    site-packages (not a checkout's ds2d2_mmrazor.egg-info on sys.path,
    which the last editable install of any virtualenv wrote)."""
    site = sysconfig.get_paths()['purelib']
    dist = next(iter(importlib.metadata.distributions(name=name,
                                                      path=[site])), None)
    return (dist or importlib.metadata.distribution(name)).requires or []


def test_carried_wheels_and_the_device_image_cover_the_stack(tmp_path):
    """Every distribution the full stack requires, transitively, is
    carried, on the GPU machines' image, or built there (mmcv); from a
    virtualenv of another stack, gpu_check.sh refuses to fetch them."""
    from ds2d2_mmrazor import env
    stack = env.installed_stack()
    if stack != 'full':
        wheels = tmp_path / 'wheels'
        result = subprocess.run(
            ['bash', SCRIPT, '--fetch-wheels', '--wheels', str(wheels)],
            cwd=REPO, env=dict(os.environ, PYTHON=sys.executable),
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert result.stderr.startswith(
            'gpu_check.sh: --fetch-wheels carries the full stack (mmcv '
            f'2.0.1, mmdet 3.1.0, mmrotate 1.0.0rc1), but {sys.executable} '
            f'has the {stack} stack')
        assert not wheels.exists()
        return
    carried = {_key(n) for n in script_array('CARRIED')}
    on_device = {_key(n) for n in script_array('ON_DEVICE')}
    needed, todo = set(), ['ds2d2_mmrazor']
    while todo:
        name = _key(todo.pop())
        if name in needed:
            continue
        needed.add(name)
        if name in on_device:
            continue  # the image installed its own requirements
        for text in installed_requires(name):
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    uncovered = needed - carried - on_device - {'mmcv', 'ds2d2-mmrazor'}
    assert not uncovered
    assert {'mmengine', 'mmdet', 'mmrotate', 'mmrazor'} <= carried


@pytest.mark.parametrize('args, code, message', [
    (['--gpus', '2'], 2, 'unknown option --gpus'),
    (['--device', 'tpu'], 2, '--device cuda or cpu, not tpu'),
    (['--device', 'cpu', '--wheels', '/nonexistent/w'], 1,
     'no wheel folder /nonexistent/w'),
    (['--device', 'cpu', '--build-only'], 2,
     '--build-only sets up from a wheel folder: none given'),
])
def test_script_refuses_bad_options(args, code, message, tmp_path):
    proc = subprocess.run(['bash', SCRIPT, '--out', str(tmp_path)] + args,
                          cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == code and message in proc.stderr
