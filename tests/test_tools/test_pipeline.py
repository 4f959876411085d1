"""tools/pipeline.py: stage order, checkpoint hand-off, resume, skip."""
import os.path as osp

import pytest

import pipeline  # tools/pipeline.py, on the path (conftest)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_dry_run_prints_the_three_stages_with_their_inputs(tmp_path,
                                                          capsys):
    pipeline.main(['--work-dir', str(tmp_path), '--dry-run'])
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert [line for line in lines if line.startswith('[')] == [
        '[1/3] teacher:', '[2/3] amplifier:', '[3/3] student:'
    ]
    commands = [line for line in lines if 'tools/train.py' in line]
    assert 'retinanet_r101_fpn_2x_dior.py' in commands[0]
    assert f'model.teacher_ckpt={tmp_path}/teacher/<final checkpoint>' \
        in commands[1]
    assert 'ds2d2_retina_r18_r101_dior.py' in commands[2]
    assert f'model.amplifier_ckpt={tmp_path}/amplifier/<final checkpoint>' \
        in commands[2]
    assert '--cfg-options' not in commands[0]


def test_command_resumes_an_interrupted_stage_and_uses_torchrun(tmp_path):
    stage = pipeline.Stage('amplifier', 'amp.py',
                           {'model.teacher_ckpt': 'teacher'})
    cmd = pipeline.command(stage, str(tmp_path), {'teacher': 't.pth'})
    assert cmd[1:] == [
        osp.join(REPO, 'tools', 'train.py'), 'amp.py', '--work-dir',
        str(tmp_path), '--cfg-options', 'model.teacher_ckpt=t.pth'
    ]
    (tmp_path / 'last_checkpoint').write_text('x/epoch_3.pth')
    cmd = pipeline.command(stage, str(tmp_path), {'teacher': 't.pth'},
                           gpus=4)
    assert cmd[1:4] == ['-m', 'torch.distributed.run', '--nproc_per_node=4']
    assert '--resume' in cmd and cmd[cmd.index('--launcher') + 1] == \
        'pytorch'


def test_finished_stages_are_skipped_and_hand_over_their_checkpoint(
        tmp_path, capsys):
    for name, ckpt in (('teacher', 't/epoch_24.pth'),
                       ('amplifier', 'a/epoch_24.pth')):
        (tmp_path / name).mkdir()
        (tmp_path / name / pipeline.DONE).write_text(ckpt + '\n')
    stages = pipeline.recipe('t.py', 'a.py', 's.py')
    results = pipeline.run(stages, str(tmp_path), dry_run=True)
    out = capsys.readouterr().out
    assert '[1/3] teacher: done earlier, t/epoch_24.pth' in out
    assert '[2/3] amplifier: done earlier, a/epoch_24.pth' in out
    assert 'model.teacher_ckpt=t/epoch_24.pth' in out
    assert 'model.amplifier_ckpt=a/epoch_24.pth' in out
    assert results['teacher']['checkpoint'] == 't/epoch_24.pth'


def test_a_failing_stage_stops_the_pipeline_with_a_resume_hint(tmp_path):
    stages = [pipeline.Stage('teacher', str(tmp_path / 'missing.py')),
              pipeline.Stage('student', 's.py', {'model.x': 'teacher'})]
    with pytest.raises(RuntimeError, match="stage 'teacher' failed.*resumes"):
        pipeline.run(stages, str(tmp_path))
    assert not (tmp_path / 'student').exists()


@pytest.mark.parametrize('dataset', ['dota', 'dior-r'])
def test_dry_run_of_the_rotated_recipe(tmp_path, capsys, dataset):
    """The oriented-box command of docs/training.md: the same three stages
    with the MMRotate configs, plus the baseline student."""
    configs = osp.join(REPO, 'configs')
    trio = [f'rotated-retinanet-le90_r101_fpn_2x_{dataset}.py',
            f'ds2d2_amplifier_rotated-retinanet-le90_r101_fpn_2x_{dataset}'
            '.py', f'ds2d2_rotated-retina-le90_r18_r101_{dataset}.py',
            f'rotated-retinanet-le90_r18_fpn_2x_{dataset}.py']
    for name in trio:
        assert osp.isfile(osp.join(configs, name)), name
    pipeline.main([
        '--work-dir', str(tmp_path), '--dry-run',
        '--teacher', osp.join(configs, trio[0]),
        '--amplifier', osp.join(configs, trio[1]),
        '--student', osp.join(configs, trio[2]),
        '--baseline', osp.join(configs, trio[3])])
    commands = [line.strip() for line in capsys.readouterr().out.splitlines()
                if 'tools/train.py' in line]
    assert len(commands) == 4
    for command, name in zip(commands, trio):
        assert osp.join(configs, name) in command
    assert f'model.teacher_ckpt={tmp_path}/teacher/<final checkpoint>' in \
        commands[1]
    assert f'model.teacher_ckpt={tmp_path}/teacher/<final checkpoint>' in \
        commands[2]
    assert f'model.amplifier_ckpt={tmp_path}/amplifier/<final checkpoint>' \
        in commands[2]
