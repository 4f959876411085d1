"""DS2D2Distill built from configs/ds2d2_retina_r18_r101_dior.py with tiny
student, teacher and amplifier: losses, gradients, frozen parts, errors."""
import copy

import pytest
import torch
from mmdet.testing import demo_mm_inputs

import ds2d2_mmrazor  # noqa: F401  (registers the modules)
from ds2d2_mmrazor.models.losses import DenseAmplifierLoss
from mmrazor.registry import MODELS

from .conftest import build

DISTILL_KEYS = {'distill.loss_low', 'distill.loss_high',
                'distill.loss_amp_full', 'distill.loss_amp_high'}


def batch(algo):
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64),
                          num_items=[3, 0], num_classes=3)
    return algo.data_preprocessor(data, True)


def total(value):
    return sum(value) if isinstance(value, list) else value


@pytest.fixture(scope='module')
def algo(algo_cfg):
    torch.manual_seed(0)
    algo = build(algo_cfg)
    algo.init_weights()
    return algo


@pytest.fixture(scope='module')
def step(algo):
    """One training forward; per-term gradients on a neck weight and the
    adapter; then backward of the sum of the distill terms."""
    data = batch(algo)
    algo.train()
    algo.zero_grad()
    losses = algo(**data, mode='loss')
    teacher_fpn = algo.distiller.teacher_recorders.get_recorder(
        'fpn').data_buffer
    student_fpn = algo.distiller.student_recorders.get_recorder(
        'fpn').data_buffer
    neck = algo.student.neck.fpn_convs[0].conv.weight
    adapter = algo.distiller.connectors['student_bands'].adapters[0].weight
    term_grads = {}
    for key in DISTILL_KEYS:
        term_grads[key] = torch.autograd.grad(
            losses[key], [neck, adapter], retain_graph=True,
            allow_unused=True)
    sum(losses[k] for k in DISTILL_KEYS).backward()
    return dict(losses=losses, term_grads=term_grads,
                teacher_fpn=list(teacher_fpn), student_fpn=list(student_fpn))


# ----------------------------------------------------------------------------
# losses and gradients


def test_loss_keys_and_values(step):
    losses = step['losses']
    assert {k for k in losses if k.startswith('distill.')} == DISTILL_KEYS
    assert {'student.loss_cls', 'student.loss_bbox'} <= set(losses)
    assert all(k.startswith(('distill.', 'student.')) for k in losses)
    for key, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), key
    for key in DISTILL_KEYS:
        assert losses[key].shape == ()
        assert losses[key].item() > 0, key


def test_distill_gradients_reach_student_and_adapter(algo, step):
    student = algo.student
    # mmdet's ResNet zero-initialises the last BN of every residual branch,
    # so the convs inside the branches get no gradient at initialisation;
    # the shortcut convs do.
    for weight in (student.backbone.layer4[0].downsample[0].weight,
                   student.backbone.layer2[0].downsample[0].weight,
                   student.neck.lateral_convs[0].conv.weight,
                   student.neck.fpn_convs[0].conv.weight,
                   algo.distiller.connectors['student_bands'].adapters[0]
                   .weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 0
    # frozen_stages=1: the stem and layer1 are not trained
    assert not student.backbone.conv1.weight.requires_grad
    assert student.backbone.conv1.weight.grad is None
    # the task head gets no gradient from the distill terms
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in student.bbox_head.parameters())


def test_each_term_reaches_the_neck_and_only_explicit_terms_the_adapter(
        step):
    for key, (neck, adapter) in step['term_grads'].items():
        assert neck is not None and neck.abs().sum() > 0, key
        if key in ('distill.loss_low', 'distill.loss_high'):
            assert adapter is not None and adapter.abs().sum() > 0, key
        else:  # the amplifiers read the raw student features
            assert adapter is None or adapter.abs().sum() == 0, key


def test_teacher_and_amplifier_frozen_without_grads(algo, step):
    for part in (algo.teacher, algo.amplifier):
        params = list(part.parameters())
        assert params
        assert all(not p.requires_grad for p in params)
        assert all(p.grad is None for p in params)


def test_trainable_parameters_are_student_and_adapter(algo):
    adapter = algo.distiller.connectors['student_bands'].adapters[0].weight
    expected = {id(p) for p in algo.student.parameters() if p.requires_grad}
    expected.add(id(adapter))
    assert {id(p) for p in algo.parameters() if p.requires_grad} == expected


def test_recorded_teacher_features_have_no_graph(step):
    (teacher_fpn, ) = step['teacher_fpn']
    assert len(teacher_fpn) == 5
    assert all(not f.requires_grad and f.grad_fn is None
               for f in teacher_fpn)
    (student_fpn, ) = step['student_fpn']
    assert all(f.requires_grad for f in student_fpn)


def test_train_mode(algo):
    algo.train()
    assert algo.training and algo.student.training
    assert algo.student.bbox_head.training and algo.student.neck.training
    for part in (algo.teacher, algo.amplifier):
        assert all(not m.training for m in part.modules())
    algo.eval()
    assert not algo.student.training
    algo.train()
    assert all(not m.training for m in algo.teacher.modules())


def test_distiller_holds_only_the_adapter(algo):
    amp_losses = [m for m in algo.distiller.distill_losses.values()
                  if isinstance(m, DenseAmplifierLoss)]
    assert len(amp_losses) == 2
    assert {m.amplifier for m in amp_losses} == {'teacher', 'high_frequency'}
    assert all(list(m.parameters()) == [] and len(m.state_dict()) == 0
               for m in amp_losses)
    params = list(algo.distiller.parameters())
    adapter = algo.distiller.connectors['student_bands'].adapters[0].weight
    assert len(params) == 1 and params[0] is adapter
    assert adapter.shape == (16, 16, 1, 1)


# ----------------------------------------------------------------------------
# a student identical to the teacher


def test_all_distill_terms_zero_when_student_equals_teacher(algo_cfg):
    torch.manual_seed(1)
    cfg = copy.deepcopy(algo_cfg)
    cfg.architecture = copy.deepcopy(cfg.teacher)
    algo = MODELS.build(cfg)
    algo.init_weights()
    teacher = algo.teacher.state_dict()
    algo.student.load_state_dict(teacher)
    algo.amplifier.load_state_dict(
        {k: v for k, v in teacher.items() if k.startswith('bbox_head.')})
    adapter = algo.distiller.connectors['student_bands'].adapters[0].weight
    with torch.no_grad():
        adapter.copy_(torch.eye(16).reshape(16, 16, 1, 1))
    algo.train()  # norm_eval=True: the student's BN uses running stats
    losses = algo(**batch(algo), mode='loss')
    for key in DISTILL_KEYS:
        assert abs(losses[key].item()) < 1e-6, (key, losses[key])
    assert total(losses['student.loss_cls']).item() > 0

    with torch.no_grad():  # a non-identity adapter: the explicit terms wake
        adapter.mul_(1.5)
    losses = algo(**batch(algo), mode='loss')
    assert losses['distill.loss_low'].item() > 0
    assert losses['distill.loss_high'].item() > 0
    assert abs(losses['distill.loss_amp_full'].item()) < 1e-6


# ----------------------------------------------------------------------------
# checkpoints


def test_teacher_and_amplifier_weights_come_from_their_checkpoints(
        algo, algo_cfg, tmp_path):
    torch.manual_seed(2)
    teacher = {k: v + 0.1 * torch.randn_like(v) if v.is_floating_point()
               else v for k, v in algo.teacher.state_dict().items()}
    amplifier = {k: v - 0.1 * torch.randn_like(v) if v.is_floating_point()
                 else v for k, v in algo.teacher.state_dict().items()}
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    amplifier_ckpt = str(tmp_path / 'amplifier.pth')
    torch.save({'state_dict': teacher, 'meta': {}}, teacher_ckpt)
    torch.save({'state_dict': amplifier, 'meta': {}}, amplifier_ckpt)
    loaded = build(algo_cfg, teacher_ckpt=teacher_ckpt,
                   amplifier_ckpt=amplifier_ckpt)
    loaded.init_weights()  # must not re-initialise the loaded models
    # stage 3 keeps only the amplifier's head: the entries of its part
    amplifier = {k: v for k, v in amplifier.items()
                 if k.startswith('bbox_head.')}
    for model, expected in ((loaded.teacher, teacher),
                            (loaded.amplifier, amplifier)):
        weights = model.state_dict()
        assert list(weights) == list(expected)
        for key, value in expected.items():
            assert torch.equal(weights[key], value), key
        assert all(not p.requires_grad for p in model.parameters())


def test_stage_3_holds_only_the_amplifier_head(algo):
    """The amplifier's backbone and neck never run in stage 3: they are
    not built, and a stage-3 checkpoint holds amplifier.bbox_head only."""
    assert [name for name, _ in algo.amplifier.named_children()] == \
        ['bbox_head']
    keys = [k for k in algo.state_dict() if k.startswith('amplifier.')]
    assert keys and all(k.startswith('amplifier.bbox_head.') for k in keys)
    teacher_head = sum(p.numel() for p in algo.teacher.bbox_head.parameters())
    assert sum(p.numel() for p in algo.amplifier.parameters()) == teacher_head


def test_amplifier_losses_get_their_heads_from_the_distiller(algo):
    args = algo.distiller.amplifier_args
    assert set(args) == {'loss_amp_full', 'loss_amp_high'}
    assert args['loss_amp_full'].head is algo.teacher.bbox_head
    assert args['loss_amp_high'].head is algo.amplifier.bbox_head
    feats = (torch.randn(1, 16, 8, 8), )
    assert args['loss_amp_full'].transform(feats) is feats
    (view, ) = args['loss_amp_high'].transform(feats)
    assert view.shape == feats[0].shape and not torch.equal(view, feats[0])
    # the distiller holds references, not submodules
    assert not any(k.startswith('distiller.') and 'bbox_head' in k
                   for k in algo.state_dict())


def test_a_distiller_without_amplifiers_says_how_to_build_it(algo_cfg):
    distiller = MODELS.build(dict(copy.deepcopy(algo_cfg.distiller),
                                  _scope_='mmrazor'))
    with pytest.raises(RuntimeError, match='through DS2D2Distill'):
        distiller.compute_distill_losses()


# ----------------------------------------------------------------------------
# errors


def test_missing_teacher_ckpt_names_stage_1(algo_cfg, tmp_path):
    missing = str(tmp_path / 'teacher.pth')
    with pytest.raises(FileNotFoundError, match='stage 1') as info:
        build(algo_cfg, teacher_ckpt=missing)
    assert missing in str(info.value) and 'teacher_ckpt' in str(info.value)


def test_missing_amplifier_ckpt_names_stage_2(algo_cfg, tmp_path):
    missing = str(tmp_path / 'amplifier.pth')
    with pytest.raises(FileNotFoundError, match='stage 2') as info:
        build(algo_cfg, amplifier_ckpt=missing)
    assert missing in str(info.value) and 'amplifier_ckpt' in str(info.value)


def test_trainable_teacher_rejected(algo_cfg):
    with pytest.raises(ValueError, match='teacher_trainable'):
        build(algo_cfg, teacher_trainable=True)


def test_high_frequency_loss_without_amplifier_rejected(algo_cfg):
    with pytest.raises(ValueError, match="amplifier='high_frequency'") as e:
        build(algo_cfg, amplifier=None)
    assert 'amplifier' in str(e.value)


def test_targets_are_assigned_once_per_step(algo, monkeypatch):
    """The amplifier losses reuse the student head's own targets: one
    assignment per iteration, the student's; none when the distill losses
    are computed."""
    from mmdet.models.dense_heads import AnchorHead
    recorder = algo.distiller.student_recorders.get_recorder('targets')
    calls = []
    original = recorder.origin_method  # what the recorder wraps and restores

    def counting(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    # counted inside the recorder's context (it wraps origin_method) and
    # after it (it restores origin_method)
    monkeypatch.setattr(recorder, 'origin_method', counting)
    monkeypatch.setattr(AnchorHead, 'get_targets', counting)
    algo.train()
    losses = algo(**batch(algo), mode='loss')
    assert DISTILL_KEYS <= set(losses)
    assert len(recorder.data_buffer) == 1
    assert len(calls) == 1 and calls[0] is algo.student.bbox_head


def test_a_built_amplifier_is_taken_and_loaded_from_its_checkpoint(
        algo_cfg, tmp_path):
    """`amplifier` may be a built stage-2 model: its head is shared, not
    copied, and amplifier_ckpt still fills it."""
    from mmdet.registry import MODELS as DET_MODELS
    cfg = copy.deepcopy(algo_cfg.amplifier)
    cfg.pop('type')
    built = DET_MODELS.build(dict(cfg, type='HighFrequencyAmplifier',
                                  _scope_='mmdet'))
    torch.manual_seed(3)
    saved = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in built.state_dict().items()}
    path = str(tmp_path / 'amplifier.pth')
    torch.save({'state_dict': saved, 'meta': {}}, path)
    algo = build(algo_cfg, amplifier=built, amplifier_ckpt=path)
    assert algo.amplifier.bbox_head is built.bbox_head
    for key, value in algo.amplifier.state_dict().items():
        assert torch.equal(value, saved[key]), key
