"""ds2d2_mmrazor/compat.py: the text repairs of upstream files, and the
runtime shims (Runner checkpoints load and resume with weights-only loading
on; torchrun without CUDA)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

# importing ds2d2_mmrazor allow-lists the Runner globals
from ds2d2_mmrazor import compat, env
from ds2d2_mmrazor.compat import (Repair, RepairError, _history_buffer_method,
                                  runner_checkpoint_globals)

PACKAGE = osp.dirname(compat.__file__)


# --------------------------------------------------------------------------
# text repairs
# --------------------------------------------------------------------------
def installed_repairs():
    """The repairs this stack needs (env.STACKS; each repair names its
    stacks)."""
    return env.stack_repairs(env.reference_stack())


def test_every_repair_is_applied_in_this_environment():
    states = {r.name: r.state() for r in installed_repairs()}
    assert states and states == {name: 'applied' for name in states}


def test_repairs_are_idempotent():
    assert compat.apply_repairs(installed_repairs(), verbose=False) == []


@pytest.mark.parametrize(
    'repair', compat.REPAIRS + compat.mmcv_source_repairs('2.14.0'),
    ids=lambda r: f'{r.name}-{r.version}')
def test_every_repair_says_why_when_to_delete_it_and_its_stacks(repair):
    assert repair.version and repair.old and repair.new
    assert repair.old != repair.new and repair.count >= 1
    assert len(repair.why) > 40 and len(repair.delete_when) > 20
    assert repair.stacks and set(repair.stacks) <= set(env.STACKS)
    # one stack's release of the package each (e.g. mmrotate 1.0.0rc1's
    # repair is not applied to onedl-mmrotate 1.2.1)
    assert {env.STACKS[s].get(repair.package, repair.version)
            for s in repair.stacks} == {repair.version}


def test_each_stack_gets_its_own_repairs():
    names = {s: {(r.name, r.version) for r in env.stack_repairs(s)}
             for s in env.STACKS}
    mmrazor = {(r.name, r.version) for r in compat.REPAIRS
               if r.package == 'mmrazor' and 'mmcv' not in r.new}
    assert len(mmrazor) == 4 and all(mmrazor <= n for n in names.values())
    assert names['full'] - mmrazor == {
        ('mmrotate/models/detectors/refine_single_stage.py', '1.0.0rc1')}
    assert names['mmdet3.3'] == mmrazor
    assert names['onedl'] - mmrazor == {
        ('mmrazor/__init__.py', '1.0.0'),
        ('mmrotate/models/detectors/h2rbox_v2.py', '1.2.1'),
        ('mmengine/runner/checkpoint.py', '0.10.12')}


@pytest.mark.parametrize('shim', [
    compat.allow_runner_checkpoints, compat.setup_cpu_distributed,
    compat.close_distributed
])
def test_every_runtime_shim_says_why_and_when_to_delete_it(shim):
    for section in ('Defect:', 'Upstream:', 'Delete when:'):
        assert section in shim.__doc__, (shim.__name__, section)


def test_repairs_import_only_the_standard_library():
    """env.py applies them by path before the stack is installed."""
    code = ('import sys\n'
            f'sys.path.insert(0, {PACKAGE!r})\n'
            'import compat, env\n'
            'heavy = {m.split(".")[0] for m in sys.modules} & {\n'
            '    "torch", "numpy", "mmengine", "mmcv", "mmdet", "mmrotate",\n'
            '    "mmrazor", "ds2d2_mmrazor"}\n'
            'print(sorted(heavy))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


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
                    'from collections.abc import Sequence', 'test', 'never')
    assert repair.state() == 'pending'
    assert repair.apply() is True
    assert fake_package.read_text() == \
        'a = 1\nfrom collections.abc import Sequence\n'
    assert repair.state() == 'applied'
    assert repair.apply() is False  # second run changes nothing


def test_repair_fails_loudly_on_unexpected_text(fake_package):
    fake_package.write_text('something else entirely\n')
    repair = Repair('fakepkg', '9.9', 'mod.py', 'old text', 'new text',
                    'mirrors upstream fix X', 'never')
    assert repair.state() == 'unknown'
    with pytest.raises(RepairError, match=r'fakepkg 9\.9.*mirrors upstream '
                       r'fix X.*ds2d2_mmrazor/compat\.py'):
        repair.apply()
    assert fake_package.read_text() == 'something else entirely\n'


def test_repair_refuses_a_different_number_of_occurrences(fake_package):
    fake_package.write_text('old old\n')
    repair = Repair('fakepkg', '9.9', 'mod.py', 'old', 'new', 'test',
                    'never', count=3)
    with pytest.raises(RepairError, match='replace 3 times, found it 2'):
        repair.apply()
    assert fake_package.read_text() == 'old old\n'


def test_repair_of_missing_package_names_it():
    repair = Repair('no_such_pkg_ds2d2', '1.0', 'x.py', 'a', 'b', 'why',
                    'never')
    assert repair.state() == 'missing'
    with pytest.raises(RepairError, match='no_such_pkg_ds2d2 1.0'):
        repair.apply()


def test_source_repair_of_mmcv_raises_every_cxx_standard(tmp_path):
    """As the released mmcv 2.0.1 setup.py (its 8 `c++14`, compiler flags
    and comments alike), before it is built."""
    released = ("extra_compile_args = {\n"
                "    'nvcc': [cuda_args, '-std=c++14'] if cuda_args else "
                "['-std=c++14'],\n"
                "    'cxx': ['-std=c++14'],\n"
                "}\n"
                "extra_compile_args['cxx'] = ['-std=c++14']\n"
                "extra_compile_args['cxx'] = ['/std:c++14']\n"
                "# c++14 features, the argument ['std=c++14'] must be added\n"
                "extra_compile_args['nvcc'] += ['-std=c++14']\n")
    (tmp_path / 'setup.py').write_text(released)
    repairs = [r for r in compat.mmcv_source_repairs('2.13.0+cpu')
               if r.version == '2.0.1']
    changed = compat.apply_repairs(repairs, root=str(tmp_path),
                                   verbose=False)
    assert changed == ['mmcv/setup.py']
    assert (tmp_path / 'setup.py').read_text() == \
        released.replace('c++14', 'c++17')
    assert compat.apply_repairs(repairs, root=str(tmp_path),
                                verbose=False) == []


@pytest.mark.parametrize('torch_version, standard', [
    ('2.1.0', 'c++17'), ('2.13.0+cpu', 'c++17'), ('2.14.1+cu130', 'c++20'),
    ('2.15.0', 'c++20'), ('3.0.0', 'c++20'), (None, 'c++17')])
def test_cxx_standard_follows_the_torch_headers(torch_version, standard):
    assert compat.cxx_standard(torch_version) == standard
    repairs = compat.mmcv_source_repairs(torch_version)
    assert {r.version: r.new for r in repairs} == (
        {'2.0.1': 'c++17'} if standard == 'c++17' else
        {'2.0.1': 'c++20', '2.1.0': 'c++20', '2.3.6': 'c++20'})


@pytest.mark.parametrize('version', ['2.1.0', '2.3.6'])
def test_source_repair_of_mmcv_2_1_for_torch_2_14(tmp_path, version):
    """As the released mmcv 2.1.0 and onedl-mmcv 2.3.6 setup.py (their 5
    `c++17`: Linux, Windows and MLU flags, one comment), built against
    torch >= 2.14."""
    released = ("    extra_compile_args['cxx'] = ['-std=c++14']\n"
                "    extra_compile_args['cxx'] = ['-std=c++17']\n"
                "    extra_compile_args['cxx'] = ['/std:c++17']\n"
                "extra_compile_args['cxx'] = ['-Wall', '-std=c++17']\n"
                "# will depend on c++17 or higher. In fact, for the windows\n"
                "    extra_compile_args['nvcc'] += ['-std=c++17']\n")
    (tmp_path / 'setup.py').write_text(released)
    repairs = [r for r in compat.mmcv_source_repairs('2.14.1')
               if r.version == version]
    assert compat.apply_repairs(repairs, root=str(tmp_path),
                                verbose=False) == ['mmcv/setup.py']
    assert (tmp_path / 'setup.py').read_text() == \
        released.replace('c++17', 'c++20')


# --------------------------------------------------------------------------
# runtime shims: torchrun without CUDA
# --------------------------------------------------------------------------
def _cfg(launcher, **kwargs):
    return Config(dict(launcher=launcher, **kwargs))


def test_cpu_distributed_leaves_single_process_and_gpu_runs(monkeypatch):
    cfg = _cfg('none')
    compat.setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _cfg('pytorch')
    compat.setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg


def test_cpu_distributed_wraps_without_device_ids(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    cfg = _cfg('pytorch', find_unused_parameters=True)
    compat.setup_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)
    cfg = _cfg('pytorch', model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', device_ids=[0]))
    compat.setup_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                         device_ids=None)


def test_cpu_distributed_refuses_other_launchers(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match='--launcher slurm needs CUDA; on '
                       'CPU use torchrun with --launcher pytorch'):
        compat.setup_cpu_distributed(_cfg('slurm'))


def test_close_distributed_without_a_group_does_nothing():
    assert not torch.distributed.is_initialized()
    compat.close_distributed()


# --------------------------------------------------------------------------
# runtime shims: Runner checkpoints with weights-only loading
# --------------------------------------------------------------------------
needs_weights_only_default = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 6),
    reason='torch < 2.6 does not load weights-only by default')


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.bn(self.fc(torch.stack(inputs))).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - torch.stack(targets))**2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'), palette=[(1, 2, 3), (4, 5, 6)])

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([i / 8, 1.]),
                    targets=torch.tensor(i / 4))


class Interrupted(Exception):
    pass


class RecordIters(Hook):
    """Records the iterations run; raises Interrupted at `stop_at`."""

    def __init__(self, stop_at=None):
        self.iters = []
        self.stop_at = stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.stop_at:
            raise Interrupted  # as if the job were killed here
        self.iters.append(runner.iter)


def train(work_dir, resume=False, stop_at=None):
    """4 iterations of SGD on a toy model, a checkpoint every 2."""
    hook = RecordIters(stop_at)
    torch.manual_seed(0)  # the model is built before the Runner seeds
    runner = Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(), batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3],
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=[hook], resume=resume, randomness=dict(seed=0))
    runner.train()
    return runner, hook.iters


@pytest.fixture(scope='module')
def interrupted(tmp_path_factory):
    """A run killed after 2 of 4 iterations (its checkpoint on disk)."""
    work_dir = tmp_path_factory.mktemp('interrupted')
    with pytest.raises(Interrupted):
        train(work_dir, stop_at=2)
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']
    return work_dir


def _run_fresh(code):
    """Run Python ``code`` in a fresh process that never imports
    ds2d2_mmrazor, weights-only loading on; its output lines."""
    env = {k: v for k, v in os.environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    result = subprocess.run([sys.executable, '-c', code], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def _load_without_allow_list(ckpt):
    """In a fresh process that never imports ds2d2_mmrazor: the globals the
    checkpoint needs beyond torch's defaults, and torch.load's error."""
    code = ('import json, torch\n'
            f'ckpt = {ckpt!r}\n'
            'needed = torch.serialization.get_unsafe_globals_in_checkpoint('
            'ckpt)\n'
            'try:\n'
            '    torch.load(ckpt)\n'
            '    error = None\n'
            'except Exception as e:\n'
            '    error = str(e)\n'
            'print(json.dumps(dict(needed=needed, error=error)))\n')
    return json.loads(_run_fresh(code)[-1])


@needs_weights_only_default
def test_runner_checkpoint_loads_with_exactly_the_allow_listed_globals(
        interrupted):
    ckpt = str(interrupted / 'iter_2.pth')
    plain = _load_without_allow_list(ckpt)
    # torch alone refuses it ...
    assert 'HistoryBuffer' in plain['error']
    # ... and everything it lacks is on our allow-list.
    allowed = {name for _, name in runner_checkpoint_globals()}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in plain['needed']
    assert set(plain['needed']) <= allowed
    state = torch.load(ckpt)  # default: weights_only=True
    assert state['meta']['iter'] == 2
    assert isinstance(state['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)


def test_resume_continues_where_the_run_stopped(interrupted, tmp_path):
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    resumed, iters = train(interrupted, resume=True)
    assert iters == [2, 3]
    uninterrupted, iters = train(tmp_path)
    assert iters == [0, 1, 2, 3]
    for (name, a), (_, b) in zip(resumed.model.state_dict().items(),
                                 uninterrupted.model.state_dict().items()):
        assert torch.allclose(a.float(), b.float()), name
    assert resumed.param_schedulers[0].last_step == \
        uninterrupted.param_schedulers[0].last_step
    # the schedule resumed too: the lr dropped at the milestone (iter 3)
    assert resumed.optim_wrapper.get_lr()['lr'] == pytest.approx([0.01])
    assert uninterrupted.optim_wrapper.get_lr()['lr'] == pytest.approx([0.01])


class _GetattrGadget:
    """Pickles as getattr(HistoryBuffer, '__init__')."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class _SystemCall:
    """Pickles as os.system('true'): arbitrary code."""

    def __reduce__(self):
        return os.system, ('true', )


@needs_weights_only_default
@pytest.mark.parametrize('payload,message', [
    (_GetattrGadget(), "getattr.*'__init__'.*only the HistoryBuffer"),
    (_SystemCall(), 'posix.system|os.system'),
])
def test_other_globals_are_still_refused(tmp_path, payload, message):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': payload}, path)
    with pytest.raises(Exception, match=message):
        torch.load(path)


class _Touch:
    """Unpickles as os.system('touch MARKER'): arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _load_with(loader, path):
    from mmengine.runner import CheckpointLoader, load_checkpoint

    from ds2d2_mmrazor.utils.stage_checkpoint import stage_state_dict
    if loader == 'torch.load':
        return torch.load(path)
    if loader == 'stage_state_dict':
        return stage_state_dict(path)
    if loader == 'CheckpointLoader':
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    return load_checkpoint(nn.Linear(2, 1), path, map_location='cpu')


@needs_weights_only_default
@pytest.mark.parametrize('loader', ['torch.load', 'stage_state_dict',
                                    'CheckpointLoader', 'load_checkpoint'])
def test_checkpoint_that_runs_code_is_refused_before_it_runs(
        tmp_path, loader):
    """On every stack (onedl-mmengine's own loader retries without
    weights-only loading: compat replaces it)."""
    marker = tmp_path / 'payload-ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': _Touch(marker)},
               path)
    with pytest.raises(Exception, match='posix.system|os.system'):
        _load_with(loader, path)
    assert not marker.exists()


@needs_weights_only_default
def test_checkpoint_that_runs_code_is_refused_without_this_package(
        tmp_path):
    """MMEngine's load_checkpoint in a process that never imports
    ds2d2_mmrazor: refused as released (mmengine 0.10.7) or as repaired
    by `make install` (onedl-mmengine)."""
    marker = tmp_path / 'payload-ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Touch(marker)}, path)
    code = ('import sys, torch\n'
            'from mmengine.runner import load_checkpoint\n'
            'try:\n'
            f'    load_checkpoint(torch.nn.Linear(2, 1), {path!r})\n'
            'except Exception as e:\n'
            '    print(type(e).__name__)\n'
            'print(sorted(m for m in sys.modules if m.startswith("ds2d2")))\n')
    assert _run_fresh(code)[-2:] == ['UnpicklingError', '[]']
    assert not marker.exists()


def test_onedl_loader_is_replaced_by_a_weights_only_one(monkeypatch):
    """onedl-mmengine's _safe_torch_load (allow-lists plain getattr, then
    retries with weights_only=False) is swapped for torch.load
    weights-only; simulated here on any MMEngine."""
    from mmengine.runner import checkpoint

    def retrying_load(file, map_location=None, weights_only=None):
        raise AssertionError('the retrying loader must not be called')

    monkeypatch.setattr(checkpoint, '_safe_torch_load', retrying_load,
                        raising=False)
    monkeypatch.setattr(compat, '_checkpoints_allowed', False)
    compat.allow_runner_checkpoints()
    assert checkpoint._safe_torch_load is compat._weights_only_load


@needs_weights_only_default
def test_weights_only_load_refuses_and_never_retries(tmp_path, monkeypatch):
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: calls.append(k) or
                        real(*a, **k))
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _Touch(tmp_path / 'ran')}, path)
    with pytest.raises(Exception, match='posix.system|os.system'):
        compat._weights_only_load(path, map_location='cpu')
    assert calls == [dict(map_location='cpu', weights_only=True)]
    assert not (tmp_path / 'ran').exists()
    # a caller that asks for a full unpickle explicitly still gets it
    good = str(tmp_path / 'good.pth')
    torch.save({'w': torch.ones(2)}, good)
    assert compat._weights_only_load(good, weights_only=False)['w'].sum() \
        == 2


def test_restricted_getattr_allows_only_statistics():
    assert _history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(Exception, match='only the HistoryBuffer'):
        _history_buffer_method(dict, 'mean')
