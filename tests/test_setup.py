"""setup.py: the requirements follow the stack of the environment it is
installed into, so `pip install -e .` into a OneDL-fork environment
replaces none of its packages (same import names, other distributions)."""
import importlib.metadata
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from ds2d2_mmrazor import env

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmrotate')


def requirements(stack=None):
    """setup.py's install_requires and extras, run as pip runs it."""
    code = ('import json, runpy, setuptools\n'
            'seen = {}\n'
            'setuptools.setup = lambda **kwargs: seen.update(kwargs)\n'
            "runpy.run_path('setup.py')\n"
            "print(json.dumps([seen['install_requires'], "
            "seen['extras_require']]))\n")
    environ = {k: v for k, v in os.environ.items() if k != 'DS2D2_STACK'}
    if stack:
        environ['DS2D2_STACK'] = stack
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                            env=environ, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    install, extras = json.loads(result.stdout)
    return ([Requirement(r) for r in install],
            {k: [Requirement(r) for r in v] for k, v in extras.items()})


def stack_names(reqs):
    names = {name for package in OPENMMLAB for name in env.dist_names(package)}
    return sorted(r.name for r in reqs if r.name in names)


@pytest.mark.parametrize('stack', ['full', 'onedl'])
def test_requirements_name_the_stack_asked_for(stack):
    install, extras = requirements(stack)
    assert stack_names(install) == sorted(
        env.dist_name(stack, k) for k in ('mmengine', 'mmcv', 'mmdet'))
    assert env.dist_name(stack, 'mmrotate') in stack_names(extras['rotated'])
    assert 'mmrazor' in {r.name for r in install}
    for package, version in env.STACKS[stack].items():  # verified: allowed
        for req in install + extras['rotated']:
            if req.name == env.dist_name(stack, package):
                assert req.specifier.contains(version), (req, version)


def test_this_environment_satisfies_them_as_installed():
    """What `pip install -e .[rotated]` would do here: nothing to replace
    (the stack's own distributions, at versions in range)."""
    install, extras = requirements()
    stack = env.reference_stack()
    reqs = install + (extras['rotated'] if 'mmrotate' in env.STACKS[stack]
                      else [])
    assert stack_names(reqs)
    for req in reqs:
        if req.name in stack_names(reqs) or req.name == 'mmrazor':
            version = importlib.metadata.version(req.name)
            assert req.specifier.contains(version, prereleases=True), (
                req, version)
    expected = 'onedl' if stack == 'onedl' else 'full'
    assert stack_names(install) == stack_names(requirements(expected)[0])
