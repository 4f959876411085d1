"""The repairs of ds2d2_mmrazor/env.py and the `make env` report."""
import subprocess
import sys

import pytest

from ds2d2_mmrazor import env
from ds2d2_mmrazor.env import Repair, RepairError


def test_every_repair_is_applied_in_this_environment():
    states = {r.name: r.state() for r in env.REPAIRS}
    assert states == {name: 'applied' for name in states}


def test_repairs_are_idempotent():
    assert env.apply_repairs(verbose=False) == []


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package 'fakepkg' on sys.path with one file to repair."""
    pkg = tmp_path / 'fakepkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    target = pkg / 'mod.py'
    monkeypatch.syspath_prepend(str(tmp_path))
    return target


def test_repair_replaces_exact_text_once(fake_package):
    fake_package.write_text('a = 1\nfrom collections import Sequence\n')
    repair = Repair('fakepkg', '9.9', 'mod.py',
                    'from collections import Sequence',
                    'from collections.abc import Sequence', 'test')
    assert repair.state() == 'pending'
    assert repair.apply() is True
    assert fake_package.read_text() == \
        'a = 1\nfrom collections.abc import Sequence\n'
    assert repair.state() == 'applied'
    assert repair.apply() is False  # second run changes nothing


def test_repair_fails_loudly_on_unexpected_text(fake_package):
    fake_package.write_text('something else entirely\n')
    repair = Repair('fakepkg', '9.9', 'mod.py', 'old text', 'new text',
                    'mirrors upstream fix X')
    assert repair.state() == 'unknown'
    with pytest.raises(RepairError, match=r'fakepkg 9\.9.*mirrors upstream '
                       r'fix X'):
        repair.apply()
    assert fake_package.read_text() == 'something else entirely\n'


def test_repair_of_missing_package_names_it():
    repair = Repair('no_such_pkg_ds2d2', '1.0', 'x.py', 'a', 'b', 'why')
    assert repair.state() == 'missing'
    with pytest.raises(RepairError, match='no_such_pkg_ds2d2 1.0'):
        repair.apply()


def test_make_env_report_exits_zero_and_lists_everything():
    result = subprocess.run([sys.executable, '-m', 'ds2d2_mmrazor.env'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name, version in env.STACK.items():
        assert f'{name}' in out and version in out
    assert 'compiled ops load' in out
    for repair in env.REPAIRS:
        assert f'applied  {repair.name}' in out
    assert 'All good.' in out


def test_env_report_fails_with_fix_it_message(monkeypatch, capsys):
    broken = Repair('no_such_pkg_ds2d2', '1.0', 'x.py', 'a', 'b', 'why')
    monkeypatch.setattr(env, 'REPAIRS', env.REPAIRS + (broken, ))
    assert env.main(['report']) == 1
    err = capsys.readouterr().err
    assert 'repair no_such_pkg_ds2d2/x.py is missing' in err
    assert 'make install' in err
