"""ds2d2_mmrazor/env.py: the `make env` report, and the repair command that
`make install` runs by path (the repairs themselves: test_compat.py)."""
import re
import subprocess
import sys

import pytest

from ds2d2_mmrazor import compat, env
from ds2d2_mmrazor.compat import Repair

ENV_PY = env.__file__


def test_make_env_report_exits_zero_and_lists_everything():
    result = subprocess.run([sys.executable, '-m', 'ds2d2_mmrazor.env'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    stack = env.installed_stack()
    assert stack in env.STACKS  # this environment is a verified stack
    # (the onedl stack's MMDetection prints a line of its own on import)
    assert re.search(rf'^Stack: {stack} \(', out, re.M)
    for name, version in env.STACKS[stack].items():
        dist = env.dist_name(stack, name)
        assert re.search(rf'^  {dist} +{re.escape(version)}( |$)', out,
                         re.M)
    assert 'compiled ops load' in out
    needed = env.stack_repairs(stack)
    assert needed  # every stack has repairs (mmrazor 1.0.0's at least)
    for repair in compat.REPAIRS:
        state = 'applied' if repair in needed else 'n/a'
        assert f'  {state:<8} {repair.name} ({repair.package} ' \
            f'{repair.version})\n' in out
    assert 'All good.' in out


def versions(monkeypatch, **installed):
    """Make the report see these distributions' versions (None: absent)."""
    real = compat.dist_version
    monkeypatch.setattr(compat, 'dist_version', lambda name: installed.get(
        name, real(name)) if name in installed else real(name))


def pretend(monkeypatch, stack, **changes):
    """Make the report see exactly ``stack`` installed (every other stack's
    distributions absent), then ``changes`` (distribution: version)."""
    installed = {name: None for package in ('mmengine', 'mmcv', 'mmdet',
                                            'mmrotate', 'mmrazor')
                 for name in env.dist_names(package)}
    installed.update({env.dist_name(stack, k): v
                      for k, v in env.STACKS[stack].items()})
    installed.update(changes)
    versions(monkeypatch, **installed)


def test_report_names_the_stack_without_mmrotate(monkeypatch, capsys):
    pretend(monkeypatch, 'mmdet3.3')
    assert env.installed_stack() == 'mmdet3.3'
    problems = env.report()
    out = capsys.readouterr().out
    assert out.startswith('Stack: mmdet3.3 (horizontal boxes only')
    assert re.search(r'^  mmrotate +missing +not in this stack: oriented '
                     r'boxes', out, re.M)
    assert not [p for p in problems if 'mmrotate' in p]
    for repair in compat.REPAIRS:
        if repair.package == 'mmrotate':
            assert f'n/a      {repair.name}' in out
    assert re.search(r'^  n/a +mmrotate.models$', out, re.M)


def test_report_without_a_verified_stack_compares_with_the_closest(
        monkeypatch, capsys):
    pretend(monkeypatch, 'mmdet3.3', mmcv='2.1.1')
    assert env.installed_stack() is None
    assert env.reference_stack() == 'mmdet3.3'
    env.report()
    out = capsys.readouterr().out
    assert out.startswith("Stack: none of the verified ones; compared with "
                          "'mmdet3.3'")
    assert 'untested: this project is verified on 2.1.0' in out
    # MMRotate next to MMDetection 3.3: not one of the stacks either
    pretend(monkeypatch, 'mmdet3.3', mmrotate='1.0.0rc1')
    assert env.installed_stack() is None


@pytest.mark.parametrize('stack', sorted(env.STACKS))
def test_pins_are_what_make_install_evaluates(stack):
    result = subprocess.run([sys.executable, ENV_PY, 'pins', '--stack',
                             stack], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    pins = dict(env.STACKS[stack])
    mmcv = pins.pop('mmcv')
    dists = {k: env.dist_name(stack, k) for k in env.STACKS[stack]}
    others = env.others(stack)
    assert result.stdout.splitlines() == [
        f'MMCV_VERSION={mmcv}', f'MMCV_DIST={dists["mmcv"]}',
        "PINS='" + ' '.join(f'{dists[k]}=={v}' for k, v in pins.items())
        + "'", "OTHERS='" + ' '.join(others) + "'"]
    shell = subprocess.run(['bash', '-c', f'eval "{result.stdout}"; '
                            'echo "$MMCV_VERSION|$MMCV_DIST|$PINS|$OTHERS"'],
                           capture_output=True, text=True, timeout=60)
    assert shell.stdout.strip() == '|'.join([
        mmcv, dists['mmcv'],
        ' '.join(f'{dists[k]}=={v}' for k, v in pins.items()),
        ' '.join(others)])
    # what make install removes first: every other distribution of the
    # same import packages, and none of this stack's own
    assert not set(others) & set(dists.values())
    for package in ('mmengine', 'mmcv', 'mmdet', 'mmrotate'):
        assert set(env.dist_names(package)) <= set(others) | {
            dists.get(package)}


def test_distributions_of_the_stacks():
    assert env.dist_name('full', 'mmdet') == 'mmdet'
    assert env.dist_name('onedl', 'mmdet') == 'onedl-mmdetection'
    assert env.dist_name('onedl', 'mmrazor') == 'mmrazor'  # not forked
    assert env.dist_names('mmcv') == ['mmcv', 'onedl-mmcv', 'mmcv-lite']
    assert env.others('onedl') == ['mmengine', 'mmcv', 'mmcv-lite', 'mmdet',
                                   'mmrotate']
    assert env.others('mmdet3.3') == [
        'onedl-mmengine', 'onedl-mmcv', 'mmcv-lite', 'onedl-mmdetection',
        'mmrotate', 'onedl-mmrotate']


def test_report_names_the_onedl_stack_by_its_distributions(monkeypatch,
                                                           capsys):
    pretend(monkeypatch, 'onedl')
    assert env.installed_stack() == 'onedl'
    assert env.reference_stack() == 'onedl'
    env.report()
    out = capsys.readouterr().out
    assert out.startswith('Stack: onedl (horizontal and oriented boxes)')
    for dist, version in (('onedl-mmdetection', '3.5.1'),
                          ('onedl-mmrotate', '1.2.1'), ('mmrazor', '1.0.0')):
        assert re.search(rf'^  {dist} +{re.escape(version)}( |$)', out,
                         re.M)
    for repair in compat.REPAIRS:
        if 'onedl' not in repair.stacks:  # e.g. mmrotate 1.0.0rc1's
            assert f'  n/a      {repair.name} ({repair.package} ' \
                f'{repair.version})' in out


def test_report_flags_two_distributions_of_one_package(monkeypatch, capsys):
    pretend(monkeypatch, 'full', **{'onedl-mmengine': '0.10.12'})
    assert env.installed_stack() is None
    problems = env.report()
    capsys.readouterr()
    assert any(p.startswith('mmengine 0.10.7 and onedl-mmengine 0.10.12 '
                            'are both installed: they share the mmengine '
                            'folder') for p in problems)


def test_pins_of_an_unknown_stack_are_refused():
    result = subprocess.run([sys.executable, ENV_PY, 'pins', '--stack',
                             'mmdet2'], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "invalid choice: 'mmdet2'" in result.stderr


def test_env_report_fails_with_fix_it_message(monkeypatch, capsys):
    broken = Repair('no_such_pkg_ds2d2', '1.0', 'x.py', 'a', 'b', 'why',
                    'never', stacks=tuple(env.STACKS))
    monkeypatch.setattr(compat, 'REPAIRS', compat.REPAIRS + (broken, ))
    assert env.main(['report']) == 1
    err = capsys.readouterr().err
    assert 'repair no_such_pkg_ds2d2/x.py is missing' in err
    assert 'make install' in err


def test_repair_by_path_is_idempotent():
    """As `make install` runs it: by path, the package not imported."""
    result = subprocess.run([sys.executable, ENV_PY, 'repair'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'  already repaired {r.name}'
        for r in env.stack_repairs(env.installed_stack())]


def test_repair_of_an_sdist_by_path(tmp_path):
    """`make install` raises mmcv's C++ standard before building it."""
    setup_py = tmp_path / 'setup.py'
    setup_py.write_text("cxx = ['-std=c++14']\n" * 8)
    (tmp_path / 'PKG-INFO').write_text('Name: mmcv\nVersion: 2.0.1\n')
    command = [sys.executable, ENV_PY, 'repair', '--source', 'mmcv',
               str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '  repaired         mmcv/setup.py\n'
    assert setup_py.read_text() == "cxx = ['-std=c++17']\n" * 8
    setup_py.write_text('a different release\n')
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert 'expected the text of mmcv 2.0.1' in result.stderr
    assert setup_py.read_text() == 'a different release\n'


def test_an_sdist_without_source_repairs_is_left_as_it_is(tmp_path):
    """mmcv 2.1.0 builds unrepaired against torch < 2.14 (it compiles with
    C++17 itself)."""
    setup_py = tmp_path / 'setup.py'
    setup_py.write_text("cxx = ['-std=c++14']\n")
    (tmp_path / 'PKG-INFO').write_text('Name: mmcv\nVersion: 2.1.0\n')
    result = subprocess.run([sys.executable, ENV_PY, 'repair', '--source',
                             'mmcv', str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if compat.cxx_standard(compat.dist_version('torch')) == 'c++17':
        assert result.stdout == ('  none needed     mmcv 2.1.0 (source '
                                 'repairs are for 2.0.1)\n')
        assert setup_py.read_text() == "cxx = ['-std=c++14']\n"


def test_report_flags_another_stacks_distribution(monkeypatch, capsys):
    """OpenMMLab's mmengine under onedl-mmdetection: compared with onedl,
    whose mmengine is onedl-mmengine."""
    pretend(monkeypatch, 'full', mmdet=None,
            **{'onedl-mmdetection': '3.5.1'})
    assert env.installed_stack() is None
    assert env.reference_stack() == 'onedl'
    problems = env.report()
    out = capsys.readouterr().out
    assert 'mmengine is installed where the onedl stack has onedl-mmengine' \
        in problems
    assert re.search(r'^  mmengine +0\.10\.7 +the onedl stack has '
                     r'onedl-mmengine instead$', out, re.M)
