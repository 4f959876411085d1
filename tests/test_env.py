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
    assert out.startswith(f'Stack: {stack} (')
    for name, version in env.STACKS[stack].items():
        assert re.search(rf'^  {name} +{re.escape(version)}( |$)', out,
                         re.M)
    assert 'compiled ops load' in out
    for repair in compat.REPAIRS:
        state = 'applied' if repair.package in env.STACKS[stack] else 'n/a'
        assert f'{state:<8} {repair.name}' in out
    assert 'All good.' in out


def versions(monkeypatch, **installed):
    """Make the report see these distributions' versions (None: absent)."""
    real = compat.dist_version
    monkeypatch.setattr(compat, 'dist_version', lambda name: installed.get(
        name, real(name)) if name in installed else real(name))


def test_report_names_the_stack_without_mmrotate(monkeypatch, capsys):
    versions(monkeypatch, mmdet='3.3.0', mmcv='2.1.0', mmrotate=None)
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
    versions(monkeypatch, mmdet='3.3.0', mmcv='2.1.1', mmrotate=None)
    assert env.installed_stack() is None
    assert env.reference_stack() == 'mmdet3.3'
    env.report()
    out = capsys.readouterr().out
    assert out.startswith("Stack: none of the verified ones; compared with "
                          "'mmdet3.3'")
    assert 'untested: this project is verified on 2.1.0' in out
    # MMRotate next to MMDetection 3.3: not one of the stacks either
    versions(monkeypatch, mmdet='3.3.0', mmcv='2.1.0', mmrotate='1.0.0rc1')
    assert env.installed_stack() is None


@pytest.mark.parametrize('stack', sorted(env.STACKS))
def test_pins_are_what_make_install_evaluates(stack):
    result = subprocess.run([sys.executable, ENV_PY, 'pins', '--stack',
                             stack], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    pins = dict(env.STACKS[stack])
    assert result.stdout.splitlines() == [
        f'MMCV_VERSION={pins.pop("mmcv")}',
        "PINS='" + ' '.join(f'{k}=={v}' for k, v in pins.items()) + "'"]
    shell = subprocess.run(['bash', '-c', f'eval "{result.stdout}"; '
                            'echo "$MMCV_VERSION|$PINS"'],
                           capture_output=True, text=True, timeout=60)
    assert shell.stdout.strip() == (
        f'{env.STACKS[stack]["mmcv"]}|'
        + ' '.join(f'{k}=={v}' for k, v in pins.items()))


def test_pins_of_an_unknown_stack_are_refused():
    result = subprocess.run([sys.executable, ENV_PY, 'pins', '--stack',
                             'mmdet2'], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "invalid choice: 'mmdet2'" in result.stderr


def test_env_report_fails_with_fix_it_message(monkeypatch, capsys):
    broken = Repair('no_such_pkg_ds2d2', '1.0', 'x.py', 'a', 'b', 'why',
                    'never')
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
    stack = env.STACKS[env.installed_stack()]
    assert result.stdout.splitlines() == [
        f'  already repaired {r.name}' for r in compat.REPAIRS
        if r.package in stack]


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
