"""ds2d2_mmrazor/env.py: the `make env` report, and the repair command that
`make install` runs by path (the repairs themselves: test_compat.py)."""
import subprocess
import sys

from ds2d2_mmrazor import compat, env
from ds2d2_mmrazor.compat import Repair

ENV_PY = env.__file__


def test_make_env_report_exits_zero_and_lists_everything():
    result = subprocess.run([sys.executable, '-m', 'ds2d2_mmrazor.env'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name, version in env.STACK.items():
        assert f'{name}' in out and version in out
    assert 'compiled ops load' in out
    for repair in compat.REPAIRS:
        assert f'applied  {repair.name}' in out
    assert 'All good.' in out


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
    assert result.stdout.splitlines() == [
        f'  already repaired {r.name}' for r in compat.REPAIRS]


def test_repair_of_an_sdist_by_path(tmp_path):
    """`make install` raises mmcv's C++ standard before building it."""
    setup_py = tmp_path / 'setup.py'
    setup_py.write_text("cxx = ['-std=c++14']\n" * 8)
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
