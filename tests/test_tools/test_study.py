"""tools/study: the quick study runs every stage and writes its tables;
failures are rows; a run is reused only when its config hashes the same;
the paired statistics, the sweep rule and MGD's scale by hand."""
import json
import math
import os.path as osp

import pytest

import study  # tools/study/, on the path (conftest)
from study import runner as study_runner
from study import stats


def table_rows(markdown: str, title: str) -> dict:
    """Rows of the first Markdown table under a '## title' heading."""
    section = markdown.split(f'## {title}\n', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith('| ') and not line.startswith('| method') \
                and not line.startswith('| seed') \
                and not line.startswith('| epochs'):
            cells = [c.strip() for c in line.strip('|').split('|')]
            rows.setdefault(cells[0], cells[1:])
    return rows


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp('study')
    args = ['--quick', '--out', str(out), '--schedule', '2']
    return out, args, study.main(args)


def test_quick_study_tables_and_runs(quick):
    out, _, report = quick
    with open(out / 'study.md') as f:
        assert f.read().startswith(report.split('\nWall time')[0])
    compare = table_rows(report, 'Comparison with other distillation '
                         'methods (test)')
    assert list(compare) == ['student alone', 'DS2D2',
                             'CrossKD (last head conv)', 'PKD']
    ablate = table_rows(report, 'Ablations of DS2D2 (test)')
    assert list(ablate) == ['DS2D2', 'DS2D2 without DISW (W = 1)']
    for label, cells in {**compare, **ablate}.items():
        ap50, map_, ap_s, ap50_dense, val, d_alone, d_ds2d2, runs = cells
        assert 0 <= float(ap50) <= 100 and 0 <= float(map_) <= float(ap50)
        assert runs == '1/1', (label, runs)
        if label == 'student alone':
            assert d_alone == '—'
        else:  # one seed: the difference and whether it won, no interval
            diff, won = d_alone.split(', ')
            assert float(diff) == pytest.approx(
                float(ap50) - float(compare['student alone'][0]), abs=0.11)
            assert won == ('1/1' if float(diff) > 0 else '0/1')
        assert (d_ds2d2 == '—') == (label == 'DS2D2')
    # the choices are made on val: the schedule curve and the regime
    choices = report.split('## Choices on val\n', 1)[1]
    assert '| 4 |' in choices and '| 8 |' in choices  # epochs x1, x2
    assert '| 0 |' in choices  # the regime table's seed row
    # pretraining once, one initialisation per seed for every student
    results = json.load(open(out / 'runs' / '0' / 'ds2d2' / 'result.json'))
    assert results['status'] == 'ok'
    assert set(results['val']) == {'AP50', 'mAP', 'AP_s'}
    assert set(results['test']) == {'AP50', 'mAP', 'AP_s', 'AP50_dense'}
    assert set(results['balance']) == {'early', 'late'}
    assert set(results['balance']['early']) == {
        'loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high'}
    init = str(out / 'runs' / '0' / 'init' / 'init.pth')
    for row in ('baseline', 'ds2d2', 'crosskd', 'pkd', 'baseline~x2'):
        config = open(out / 'runs' / '0' / row / 'config.py').read()
        assert config.count(init) == 1, row  # the student's init_cfg
        assert "drop_last=True" in config
    teacher = open(out / 'runs' / '0' / 'teacher' / 'config.py').read()
    assert str(out / 'runs' / 'pretrain' / 'teacher') in teacher
    assert osp.isfile(out / 'study_ap50.png')


def test_same_initialisation_for_every_student_of_a_seed(quick):
    """The students' first weights are the seed's init checkpoint: every
    student row starts the same (their init_cfg loads it)."""
    import torch
    out, _, _ = quick
    init = torch.load(out / 'runs' / '0' / 'init' / 'init.pth',
                      weights_only=True)['state_dict']
    pretrained = torch.load(
        open(out / 'runs' / 'pretrain' / 'student' / 'last_checkpoint'
             ).read().strip(), weights_only=False)['state_dict']
    # the init is the pretrained detector (--pretrain-init detector)
    assert set(init) == set(pretrained)
    for key, value in init.items():
        assert torch.equal(value, pretrained[key]), key
    # so every student's first task loss (same weights, same first batch)
    # is the same number, distilled or not
    first = {}
    for row in ('baseline', 'ds2d2', 'crosskd', 'pkd', 'no_disw'):
        logs = study.scalar_logs(str(out / 'runs' / '0' / row))
        with open(logs[0]) as f:
            record = json.loads(f.readline())
        first[row] = record.get('loss_cls', record.get('student.loss_cls'))
    assert len(set(first.values())) == 1, first


def test_reuse_only_when_the_config_hashes_the_same(quick, capsys):
    out, args, report = quick
    capsys.readouterr()
    again = study.main(args)
    assert 'training' not in capsys.readouterr().out  # all reused
    title = 'Comparison with other distillation methods (test)'
    assert table_rows(again, title) == table_rows(report, title)
    # other student epochs: the students train again, nothing else
    settings = study.from_args(study.parse_args(
        args + ['--epochs', '3', '--methods', 'baseline']))
    runner = study.Study(settings, str(out))
    runner.run_all(study.plan(settings, runner.rows))
    assert runner.trained == {'0/baseline', '0/baseline~x2'}
    assert runner.results['0/init']['hash'] == json.load(
        open(out / 'runs' / '0' / 'init' / 'result.json'))['hash']
    assert "max_epochs=3" in open(out / 'runs' / '0' / 'baseline' /
                                  'config.py').read()


def test_a_diverging_run_is_reported_and_its_dependants_skipped(tmp_path):
    settings = study.from_args(study.parse_args(
        ['--quick', '--methods', 'ds2d2', '--lr', '1e30',
         '--pretrain-images', '0']))
    runner = study.Study(settings, str(tmp_path))
    runner.run_all(study.plan(settings, runner.rows))
    teacher = runner.results['0/teacher']
    assert teacher['status'] == 'failed'
    assert 'non-finite' in teacher['reason'] or 'nan' in \
        teacher['reason'].lower()
    for key in ('0/amplifier', '0/ds2d2'):
        assert runner.results[key]['status'] == 'skipped'
        assert '0/teacher' in runner.results[key]['reason']
    report = study.Report(runner, {}, {})
    assert report.status('ds2d2') == \
        '0/1; seed 0: skipped (0/teacher, 0/amplifier failed)'
    assert report.status('teacher').startswith(
        '0/1; seed 0: failed (non-finite loss at iteration')


def test_a_failed_evaluation_is_a_row(tmp_path, monkeypatch):
    settings = study.from_args(study.parse_args(
        ['--quick', '--methods', 'baseline', '--pretrain-images', '0',
         '--epochs', '1']))
    runner = study.Study(settings, str(tmp_path))

    def broken(*args):
        raise RuntimeError('no detections to score')

    monkeypatch.setattr(study_runner.evaluation, 'evaluate', broken)
    runner.run_all(study.plan(settings, runner.rows))
    result = runner.results['0/baseline']
    assert result['status'] == 'eval failed'
    assert result['reason'] == 'RuntimeError: no detections to score'
    assert osp.isfile(result['checkpoint'])


def test_plan_dependencies_sweep_and_schedule():
    settings = study.Settings(seeds=[0, 1], sweep=[0.1, 10],
                              sweep_seeds=[0], schedule=[2],
                              schedule_seeds=[1], methods=['ds2d2', 'mgd'])
    rows = study.methods('retinanet')
    runs = {r.key: r for r in study.plan(settings, rows)}
    assert list(runs)[:2] == ['pretrain/student', 'pretrain/teacher']
    assert runs['0/init'].needs == dict(pretrained='pretrain/student')
    assert runs['0/teacher'].needs == dict(pretrained='pretrain/teacher')
    assert runs['1/ds2d2'].needs == dict(init='1/init', teacher='1/teacher',
                                         amplifier='1/amplifier')
    assert runs['0/mgd'].needs == dict(init='0/init', teacher='0/teacher')
    assert runs['1/baseline~x2'].epochs == 2 * settings.epochs
    assert '0/baseline~x2' not in runs and '0/ds2d2@10' not in runs
    sweep = [r.key for r in study.plan(settings, rows, seeds=[0],
                                       sweep=True)]
    assert {'0/ds2d2@0.1', '0/ds2d2@10', '0/mgd@0.1', '0/mgd@10'} <= \
        set(sweep)
    assert '0/baseline@0.1' not in sweep
    chosen = [r.key for r in study.plan(settings, rows, {'mgd': 10})]
    assert '1/mgd@10' in chosen and '1/ds2d2@10' not in chosen


def test_sweep_chooses_the_best_mean_val_factor_per_method():
    settings = study.Settings(seeds=[0, 1], sweep=[0.1], sweep_seeds=[0, 1],
                              methods=['baseline', 'ds2d2', 'pkd'])
    runner = study.Study(settings, '/nonexistent')
    val = {'0/ds2d2': 0.30, '1/ds2d2': 0.20, '0/ds2d2@0.1': 0.28,
           '1/ds2d2@0.1': 0.26, '0/pkd': 0.10, '1/pkd': 0.12,
           '0/pkd@0.1': 0.09, '1/pkd@0.1': 0.13}  # a tie: the recipe's
    runner.results = {k: dict(status='ok', val=dict(AP50=v))
                      for k, v in val.items()}
    scores, chosen = study.sweep_choice(runner)
    assert chosen == {'ds2d2': 0.1, 'pkd': 1.0}
    assert scores['ds2d2'][0.1] == [0.28, 0.26]


def test_mgd_weight_brought_to_scale():
    """MGD sums squared errors over C x H x W: at 128 px and 32 channels a
    level has (128/800)^2 * 32/256 of the recipe's elements."""
    from mmengine.config import Config
    settings = study.Settings(image_size=128, channels=32)
    assert study.mgd_element_scale(settings) == pytest.approx(312.5)
    cfg = Config.fromfile(osp.join(study.CONFIGS, 'peers',
                                   'mgd_retina_r18_r101_dior.py'))
    study.methods('retinanet')['mgd'].edit(cfg, settings)
    for loss in cfg.model.distiller.distill_losses.values():
        assert loss.alpha_mgd == pytest.approx(2e-5 * 312.5)


def test_scale_distill_weights_scales_every_weight():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(study.CONFIGS,
                                   'ds2d2_retina_r18_r101_dior.py'))
    study.scale_distill_weights(cfg, 0.1)
    losses = cfg.model.distiller.distill_losses
    assert losses.loss_spectral.low_weight == pytest.approx(1e-6)
    assert losses.loss_spectral.high_weight == pytest.approx(1e-6)
    assert losses.loss_amp_full.loss_weight == pytest.approx(0.1)
    cfg.model.distiller.distill_losses.loss_spectral = dict(type='X')
    with pytest.raises(ValueError, match="'loss_spectral' \\(X\\) has none"):
        study.scale_distill_weights(cfg, 0.1)


def test_paired_differences_by_hand():
    a = [0.30, 0.25, 0.40, 0.35, 0.20]
    b = [0.28, 0.26, 0.33, 0.30, 0.21]
    d = [0.02, -0.01, 0.07, 0.05, -0.01]
    mean = sum(d) / 5
    sd = math.sqrt(sum((x - mean)**2 for x in d) / 4)
    half = 2.7764451 * sd / math.sqrt(5)  # t(0.975, 4), from a table
    p = stats.paired(a, b)
    assert (p.n, p.wins) == (5, 3)
    assert p.mean == pytest.approx(mean)
    assert (p.low, p.high) == (pytest.approx(mean - half, abs=1e-6),
                               pytest.approx(mean + half, abs=1e-6))
    assert p.verdict() == 'unresolved'
    assert p.text() == f'+{100 * mean:.1f} [{100 * (mean - half):+.1f}, ' \
        f'+{100 * (mean + half):.1f}], 3/5'
    # a missing seed drops out of both sides
    assert stats.paired([0.3, math.nan, 0.5], [0.1, 0.2, 0.2]).n == 2
    # diffs 0.2, 0.3, 0.25: sd 0.05, t(0.975, 2) = 4.303: [0.126, 0.374]
    assert stats.paired([0.3, 0.4, 0.35], [0.1] * 3).verdict() == 'better'
    assert stats.paired([0.1] * 3, [0.3, 0.4, 0.35]).verdict() == 'worse'
    assert stats.paired([0.1], [0.3]).text() == '-20.0, 0/1'
    with pytest.raises(ValueError, match='3 values against 2'):
        stats.paired([1, 2, 3], [1, 2])


def test_mean_std_and_missing_values():
    assert stats.mean_std([0.1, 0.3]) == '20.0 ± 14.1'
    assert stats.mean_std([0.25]) == '25.0'
    assert stats.mean_std([math.nan, 0.5]) == '50.0'
    assert stats.mean_std([]) == 'n/a'


def test_help_states_what_the_code_does(capsys):
    with pytest.raises(SystemExit):
        study.parse_args(['--help'])
    text = capsys.readouterr().out
    for option in ('--teacher-width', '--student-width', '--warmup',
                   '--lr', '--schedule', '--pretrain-images', '--sweep'):
        assert option in text
    assert 'pretrains a student-width' in text and 'CrossKD' in text


def test_per_level_terms_merge_into_the_norm_of_their_sum():
    """Per-level peer losses touch disjoint FPN levels: the gradient norm of
    their sum is the root of the summed squares; then the mean over seeds."""
    runner = study.Study(study.Settings(seeds=[0, 1]), '/nonexistent')
    runner.results = {
        '0/pkd': dict(status='ok', balance=dict(
            early={'loss_pkd_fpn0': 3.0, 'loss_pkd_fpn1': 4.0},
            late={'loss_pkd_fpn0': 1.0, 'loss_pkd_fpn1': 0.0})),
        '1/pkd': dict(status='ok', balance=dict(
            early={'loss_pkd_fpn0': 6.0, 'loss_pkd_fpn1': 8.0})),
    }
    report = study.Report(runner, {}, {})
    assert report.balance('pkd') == {
        'loss_pkd, all levels': {'early': pytest.approx(7.5),
                                 'late': pytest.approx(1.0)}}


def test_scale_free_row_and_its_sweep_scale_its_share():
    from mmengine.config import Config
    rows = study.methods('retinanet')
    assert rows['scale_free'].config == 'scale_free'
    assert rows['scale_free'].needs == ('teacher', 'amplifier')
    cfg = Config.fromfile(osp.join(
        study.CONFIGS, study.DETECTORS['faster-rcnn']['scale_free']))
    study.scale_distill_weights(cfg, 0.1)
    assert cfg.model.share == pytest.approx(0.1)
    # the losses' weights cancel in the variant: left as they are
    assert cfg.model.distiller.distill_losses.loss_amp_full.loss_weight == 1


def test_explicit_sweep_rows_run_only_when_named():
    from mmengine.config import Config
    rows = study.methods('retinanet')
    names = [f'explicit_x{f}' for f in (100, 1000, 10000)]
    assert all(rows[n].by_name and rows[n].group == 'ablate'
               for n in names)
    every = study.wanted_rows(study.Settings(), rows)
    assert not set(names + ['scale_free']) & set(every)
    assert {'baseline', 'ds2d2', 'explicit', 'crosskd'} <= set(every)
    named = study.Settings(seeds=[0], methods=['explicit_x1000'])
    assert study.wanted_rows(named, rows) == ['explicit_x1000']
    keys = [r.key for r in study.plan(named, rows)]
    assert '0/explicit_x1000' in keys and '0/amplifier' not in keys
    assert not any(k.endswith('explicit_x100') for k in keys)
    cfg = Config.fromfile(osp.join(study.CONFIGS,
                                   'ds2d2_retina_r18_r101_dior.py'))
    rows['explicit_x1000'].edit(cfg, named)
    losses = cfg.model.distiller.distill_losses
    assert set(losses) == {'loss_spectral'} and cfg.model.amplifier is None
    assert losses.loss_spectral.low_weight == pytest.approx(1e-2)
    assert losses.loss_spectral.high_weight == pytest.approx(1e-2)
