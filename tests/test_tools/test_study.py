"""tools/study.py: the quick study runs every stage and writes its tables
and pictures; failed runs are reported, not dropped; a re-run reuses."""
import json
import math
import os.path as osp

import cv2
import pytest

import study  # tools/study.py, on the path (conftest)


def table_rows(markdown: str, title: str) -> dict:
    """Rows of the Markdown table under a '## title' heading."""
    section = markdown.split(f'## {title}\n', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith('| ') and not line.startswith('| method') \
                and not line.startswith('| seed'):
            cells = [c.strip() for c in line.strip('|').split('|')]
            rows[cells[0]] = cells[1:]
    return rows


def test_quick_study_tables_pictures_and_reuse(tmp_path, capsys):
    out = tmp_path / 'study'
    report = study.main(['--quick', '--out', str(out)])
    with open(out / 'study.md') as f:
        assert f.read().startswith(report.split('\nWall time')[0])
    compare = table_rows(report, 'Comparison with other distillation methods')
    assert list(compare) == ['student alone', 'DS2D2', 'PKD']
    ablate = table_rows(report, 'Ablations of DS2D2')
    assert list(ablate) == ['DS2D2', 'DS2D2 without DISW (W = 1)']
    for label, cells in {**compare, **ablate}.items():
        ap50, map_, ap_s, ap50_dense, delta, runs = cells
        assert 0 <= float(ap50) <= 100 and 0 <= float(map_) <= float(ap50)
        assert runs == '1/1', (label, runs)
        assert ap_s != '' and ap50_dense != ''
        assert delta == '—' if label == 'student alone' else \
            float(delta) == pytest.approx(float(ap50) - float(
                compare['student alone'][0]), abs=0.11)
    gap = table_rows(report, 'Teacher vs student alone (test AP50)')
    assert list(gap) == ['0']
    # every distillation term's gradient balance, early and late
    balance = table_rows(report, 'Gradient balance on the student FPN')
    result = json.load(open(out / 'runs' / '0' / 'ds2d2' / 'result.json'))
    assert set(result['balance']) == {'early', 'late'}
    for phase in ('early', 'late'):  # the four DS2D2 terms, as logged
        assert set(result['balance'][phase]) == {
            'loss_low', 'loss_high', 'loss_amp_full', 'loss_amp_high'}
        assert all(r > 0 and math.isfinite(r)
                   for r in result['balance'][phase].values())
    assert 'DS2D2' in balance and 'PKD' in balance
    for name in ('study_ap50.png', 'gradient_balance.png'):
        image = cv2.imread(str(out / name))
        assert image is not None and min(image.shape[:2]) > 200, name
    # the splits: train on train, choose on val, report test
    assert result['status'] == 'ok'
    assert set(result['val']) == {'AP50', 'mAP', 'AP_s'}
    assert set(result['test']) == {'AP50', 'mAP', 'AP_s', 'AP50_dense'}
    config = open(out / 'runs' / '0' / 'ds2d2' / 'config.py').read()
    assert "ann_file='ImageSets/Main/val.txt'" in config
    assert "ann_file='ImageSets/Main/test.txt'" in config

    capsys.readouterr()
    again = study.main(['--quick', '--out', str(out)])
    assert 'training' not in capsys.readouterr().out  # all reused
    assert table_rows(again, 'Ablations of DS2D2') == ablate


def test_a_diverging_run_is_reported_and_its_dependants_skipped(tmp_path):
    settings = study.settings_from(study.parse_args(
        ['--quick', '--methods', 'ds2d2']))
    settings.teacher_epochs = 1
    settings.lr = 1e30  # the teacher diverges at once
    runner = study.Study(settings, str(tmp_path))
    runner.run_all(study.plan(settings, runner.rows, {}))
    teacher = runner.results['0/teacher']
    assert teacher['status'] == 'failed'
    assert 'non-finite' in teacher['reason'] or 'nan' in \
        teacher['reason'].lower()
    for key in ('0/amplifier', '0/ds2d2'):
        assert runner.results[key]['status'] == 'skipped'
        assert '0/teacher' in runner.results[key]['reason']
    report = study.Report(runner, {})
    assert report.status('ds2d2') == \
        '0/1; seed 0: skipped (0/teacher, 0/amplifier failed)'
    assert report.status('teacher').startswith(
        '0/1; seed 0: failed (non-finite loss at iteration')


def test_sweep_chooses_the_best_val_factor_per_method():
    settings = study.Settings(seeds=[0, 1], sweep=[0.1], sweep_seeds=[0, 1],
                              methods=['teacher', 'amplifier', 'baseline',
                                       'ds2d2', 'pkd'])
    runner = study.Study(settings, '/nonexistent')
    val = {'0/ds2d2': 0.30, '1/ds2d2': 0.20, '0/ds2d2@0.1': 0.28,
           '1/ds2d2@0.1': 0.26, '0/pkd': 0.10, '1/pkd': 0.12,
           '0/pkd@0.1': 0.09, '1/pkd@0.1': 0.12}
    runner.results = {k: dict(status='ok', val=dict(AP50=v))
                      for k, v in val.items()}
    assert runner.selected_factors() == {'ds2d2': 0.1, 'pkd': 1.0}
    runs = [r.key for r in study.plan(settings, runner.rows,
                                      {'ds2d2': 0.1, 'pkd': 1.0})]
    assert '0/ds2d2@0.1' in runs and '1/ds2d2@0.1' in runs
    assert not any(k.startswith('0/pkd@') for k in runs)


def test_scale_distill_weights_scales_every_weight(tmp_path):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(study.CONFIGS,
                                   'ds2d2_retina_r18_r101_dior.py'))
    study.scale_distill_weights(cfg, 0.1)
    losses = cfg.model.distiller.distill_losses
    assert losses.loss_spectral.low_weight == pytest.approx(1e-6)
    assert losses.loss_spectral.high_weight == pytest.approx(1e-6)
    assert losses.loss_amp_full.loss_weight == pytest.approx(0.1)
    mgd = Config.fromfile(osp.join(study.CONFIGS, 'peers',
                                   'mgd_retina_r18_r101_dior.py'))
    study.scale_distill_weights(mgd, 10)
    assert mgd.model.distiller.distill_losses.loss_mgd_fpn0.alpha_mgd == \
        pytest.approx(2e-4)
    cfg.model.distiller.distill_losses.loss_spectral = dict(type='X')
    with pytest.raises(ValueError, match="'loss_spectral' \\(X\\) has none"):
        study.scale_distill_weights(cfg, 0.1)


def test_mean_std_and_missing_values():
    assert study.mean_std([0.1, 0.3]) == '20.0 ± 14.1'
    assert study.mean_std([0.25]) == '25.0'
    assert study.mean_std([math.nan, 0.5]) == '50.0'
    assert study.mean_std([]) == 'n/a'


def test_another_setting_in_the_same_folder_is_refused(tmp_path):
    study.Study(study.Settings(), str(tmp_path)).check_settings()
    study.Study(study.Settings(seeds=[5], sweep=[0.1]),
                str(tmp_path)).check_settings()  # seeds, sweep: fine
    with pytest.raises(ValueError, match=r"'epochs': \(24, 3\)"):
        study.Study(study.Settings(epochs=3), str(tmp_path)).check_settings()


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
        '0/ds2d2': dict(status='ok', balance=dict(
            early={'loss_low': 0.5, 'loss_amp_full': 2.0})),
    }
    report = study.Report(runner, {})
    assert report.balance('pkd') == {
        'loss_pkd, all levels': {'early': pytest.approx(7.5),
                                 'late': pytest.approx(1.0)}}
    assert report.balance('ds2d2') == {'loss_low': {'early': 0.5},
                                       'loss_amp_full': {'early': 2.0}}
