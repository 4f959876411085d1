"""The amplifier losses' pure functions on plain tensors (no detector),
against hand computations written out with ``math``; and what the loss
modules hold and reject (one vocabulary: amplifier, cls_loss, reg_loss,
loss_weight; the head is an argument, not a member)."""
import math
import re

import pytest
import torch

from ds2d2_mmrazor.models.losses import (Amplifier, AmplifierLoss,
                                         DenseAmplifierLoss,
                                         RoIAmplifierLoss,
                                         dense_amplifier_loss,
                                         flatten_levels, roi_amplifier_loss,
                                         same_features, top_class_deltas)
from mmrazor.registry import MODELS


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softmax(row) -> list:
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def zero_loss(*args, **kwargs) -> torch.Tensor:
    """A sub-loss that leaves its term out."""
    return torch.zeros(())


def leaf(values, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, requires_grad=True)


# ----------------------------------------------------------------------------
# flatten_levels


def test_flatten_levels_orders_level_row_column_anchor():
    # value = 1000 n + 500 level + 100 row + 10 column + channel, where
    # channel = anchor * K + k (A = 2 anchors, K = 2 values each)
    def level_map(level, height, width):
        n = torch.arange(2).view(2, 1, 1, 1)
        c = torch.arange(4).view(1, 4, 1, 1)
        h = torch.arange(height).view(1, 1, height, 1)
        w = torch.arange(width).view(1, 1, 1, width)
        return (1000 * n + 500 * level + 100 * h + 10 * w + c).float()

    flat = flatten_levels([level_map(0, 2, 2), level_map(1, 1, 1)], 2)
    image0 = [[0, 1], [2, 3],          # level 0, row 0, column 0, a0 a1
              [10, 11], [12, 13],      # level 0, row 0, column 1
              [100, 101], [102, 103],  # level 0, row 1, column 0
              [110, 111], [112, 113],  # level 0, row 1, column 1
              [500, 501], [502, 503]]  # level 1
    expected = torch.tensor([image0, [[v + 1000 for v in anchor]
                                      for anchor in image0]]).float()
    assert flat.shape == (2, 10, 2)
    torch.testing.assert_close(flat, expected, rtol=0, atol=0)


# ----------------------------------------------------------------------------
# dense_amplifier_loss: 2 images, 3 anchors, 2 classes, boxes = anchor + d

ANCHORS = [[0., 0., 4., 4.], [2., 2., 6., 8.], [10., 10., 12., 13.]]
STUDENT_CLS = [[[0.5, -1.0], [2.0, 0.0], [-0.3, 0.8]],
               [[1.2, -2.0], [0.0, 0.1], [-1.5, -0.5]]]
TEACHER_CLS = [[[1.0, -0.5], [-1.0, 0.5], [0.2, 0.2]],
               [[0.4, -1.0], [1.5, -0.2], [-2.0, 0.3]]]
STUDENT_REG = [[[0.1, -0.2, 0.3, 0.0], [-0.4, 0.1, 0.2, 0.5],
                [0.0, 0.0, -0.3, 0.2]],
               [[0.2, 0.2, -0.1, -0.1], [0.3, -0.3, 0.0, 0.4],
                [-0.2, 0.1, 0.1, -0.4]]]
TEACHER_REG = [[[0.0, 0.0, 0.0, 0.0], [0.1, -0.1, -0.2, 0.1],
                [0.2, -0.2, 0.1, 0.0]],
               [[-0.1, 0.3, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0],
                [0.1, -0.2, -0.1, 0.2]]]
LABEL_WEIGHTS = [[1., 0., 1.], [1., 1., 1.]]  # anchor (0, 1) ignored
AVG_FACTOR = 2.0


def add(anchors, deltas):
    return anchors + deltas


def hand_giou(a, b) -> float:
    """GIoU of two (x1, y1, x2, y2) boxes: IoU − (enclosing − union) /
    enclosing."""
    inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * \
        max(0., min(a[3], b[3]) - max(a[1], b[1]))
    area = [(x[2] - x[0]) * (x[3] - x[1]) for x in (a, b)]
    union = sum(area) - inter
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * \
        (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (enclosing - union) / enclosing


def hand_dense_terms(avg_factor=AVG_FACTOR, label_weights=LABEL_WEIGHTS):
    """The cls term Σ lw · BCE(z_s, σ(z_t)) · |σ(z_s) − σ(z_t)| and the reg
    term Σ max_c σ(z_t) · (1 − GIoU(a + d_s, a + d_t)), each divided by
    max(avg_factor, 1)."""
    cls = reg = 0.0
    for n in range(2):
        for a in range(3):
            for c in range(2):
                p_s = sigmoid(STUDENT_CLS[n][a][c])
                p_t = sigmoid(TEACHER_CLS[n][a][c])
                bce = -(p_t * math.log(p_s) + (1 - p_t) * math.log(1 - p_s))
                cls += label_weights[n][a] * bce * abs(p_s - p_t)
            box_s = [x + d for x, d in zip(ANCHORS[a], STUDENT_REG[n][a])]
            box_t = [x + d for x, d in zip(ANCHORS[a], TEACHER_REG[n][a])]
            confidence = max(sigmoid(z) for z in TEACHER_CLS[n][a])
            reg += confidence * (1 - hand_giou(box_s, box_t))
    divisor = max(avg_factor, 1.0)
    return cls / divisor, reg / divisor


def dense_inputs(dtype=torch.float32, label_weights=LABEL_WEIGHTS):
    return dict(student_cls=leaf(STUDENT_CLS, dtype),
                student_reg=leaf(STUDENT_REG, dtype),
                teacher_cls=leaf(TEACHER_CLS, dtype),
                teacher_reg=leaf(TEACHER_REG, dtype),
                anchors=torch.tensor(ANCHORS, dtype=dtype),
                label_weights=torch.tensor(label_weights, dtype=dtype))


def qfl():
    return MODELS.build(dict(type='mmrazor.KDQualityFocalLoss', beta=1.0))


def giou():
    return MODELS.build(dict(type='mmdet.GIoULoss', reduction='mean',
                             loss_weight=1.0))


def dense(inputs, avg_factor=AVG_FACTOR, decode=add, cls_loss=None,
          reg_loss=None):
    return dense_amplifier_loss(
        **inputs, avg_factor=avg_factor, decode=decode,
        cls_loss=qfl() if cls_loss is None else cls_loss,
        reg_loss=giou() if reg_loss is None else reg_loss)


def test_hand_giou_of_a_known_pair():
    # intersection 1, union 7, enclosing box 9
    assert hand_giou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(
        1 / 7 - 2 / 9, rel=1e-15)


def test_dense_terms_equal_hand_computation():
    cls, reg = hand_dense_terms()
    assert cls > 0 and reg > 0
    cls_value = dense(dense_inputs(), reg_loss=zero_loss)
    reg_value = dense(dense_inputs(), cls_loss=zero_loss)
    total = dense(dense_inputs())
    assert total.shape == () and total.dtype == torch.float32
    # the cls term runs in float32 (the KD QFL casts to float32)
    assert cls_value.item() == pytest.approx(cls, rel=1e-6)
    # the box distance runs in float64; mmdet divides by avg_factor + 1.2e-7
    assert reg_value.item() == pytest.approx(reg, rel=1e-6)
    assert total.item() == pytest.approx(cls + reg, rel=1e-6)


def test_dense_ignored_anchor_leaves_cls_only():
    weights = [[1., 1., 1.], [1., 1., 1.]]
    cls_all, reg_all = hand_dense_terms(label_weights=weights)
    cls, reg = hand_dense_terms()
    assert cls_all > cls and reg_all == reg  # the hand formula agrees
    assert dense(dense_inputs(label_weights=weights),
                 reg_loss=zero_loss).item() == pytest.approx(cls_all,
                                                             rel=1e-6)
    # the student's logits at the ignored anchor do not count
    inputs = dense_inputs()
    with torch.no_grad():
        inputs['student_cls'][0, 1] += 5.0
    assert dense(inputs).item() == pytest.approx(cls + reg, rel=1e-6)
    # its box does (weighted by the teacher's confidence)
    inputs = dense_inputs()
    with torch.no_grad():
        inputs['student_reg'][0, 1] += 0.5
    assert dense(inputs, cls_loss=zero_loss).item() > reg * (1 + 1e-3)


@pytest.mark.parametrize('avg_factor', [0, 0.0, 0.5])
def test_dense_avg_factor_floored_to_one(avg_factor):
    cls, reg = hand_dense_terms(avg_factor=1.0)
    value = dense(dense_inputs(), avg_factor=avg_factor)
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(cls + reg, rel=1e-6)
    torch.testing.assert_close(value, dense(dense_inputs(), avg_factor=1))


def test_dense_reg_runs_in_float64_with_teacher_confidence():
    calls = {}

    def decode(anchors, deltas):
        calls.setdefault('decode', []).append((anchors, deltas))
        return anchors + deltas

    def reg_loss(pred, target, weight, avg_factor):
        calls['reg'] = (pred, target, weight, avg_factor)
        return (weight[:, None] * (pred - target).abs()).sum() / avg_factor

    value = dense(dense_inputs(), decode=decode, cls_loss=zero_loss,
                  reg_loss=reg_loss)
    pred, target, weight, avg_factor = calls['reg']
    assert pred.dtype == target.dtype == weight.dtype == torch.float64
    assert value.dtype == torch.float32  # back to the cls term's dtype
    assert avg_factor == AVG_FACTOR
    # both decodes get the image's anchors once per image, in image order
    assert len(calls['decode']) == 2
    for anchors, deltas in calls['decode']:
        assert anchors.shape == deltas.shape == (6, 4)
        torch.testing.assert_close(anchors, torch.tensor(ANCHORS * 2))
    assert pred.shape == target.shape == (6, 4)
    # the weights are max_c sigmoid(teacher logits), image-major
    confidence = [max(sigmoid(z) for z in TEACHER_CLS[n][a])
                  for n in range(2) for a in range(3)]
    torch.testing.assert_close(weight, torch.tensor(confidence,
                                                    dtype=torch.float64))
    l1 = sum(c * sum(abs(s - t) for s, t in zip(STUDENT_REG[n][a],
                                                 TEACHER_REG[n][a]))
             for c, (n, a) in zip(confidence,
                                  [(n, a) for n in range(2)
                                   for a in range(3)]))
    assert value.item() == pytest.approx(l1 / AVG_FACTOR, rel=1e-6)


def test_dense_float64_inputs_match_hand_computation():
    cls, reg = hand_dense_terms()
    value = dense(dense_inputs(torch.float64), cls_loss=zero_loss)
    assert value.dtype == torch.float32  # zero_loss is a float32 zero
    assert value.item() == pytest.approx(reg, rel=1e-6)
    reg64 = dense(dense_inputs(torch.float64),
                  cls_loss=lambda *a, **k: torch.zeros((),
                                                       dtype=torch.float64))
    assert reg64.dtype == torch.float64
    # float64 end to end: only mmdet's avg_factor + eps separates them
    assert reg64.item() == pytest.approx(reg, rel=2e-7)


def test_dense_gradients_reach_student_inputs_only():
    inputs = dense_inputs()
    dense(inputs).backward()
    for name in ('student_cls', 'student_reg'):
        grad = inputs[name].grad
        assert grad is not None and torch.isfinite(grad).all()
        assert grad.abs().sum() > 0
    assert inputs['teacher_cls'].grad is None
    assert inputs['teacher_reg'].grad is None
    # the ignored anchor's logits get no gradient from the cls term
    assert (inputs['student_cls'].grad[0, 1] == 0).all()


def test_dense_zero_when_student_equals_teacher():
    inputs = dense_inputs()
    inputs['student_cls'] = leaf(TEACHER_CLS)
    inputs['student_reg'] = leaf(TEACHER_REG)
    assert abs(dense(inputs).item()) < 1e-6


def test_dense_label_weight_shape_mismatch_raises():
    inputs = dense_inputs()
    inputs['label_weights'] = inputs['label_weights'][:, :2]
    with pytest.raises(ValueError,
                       match=r'predicts 3 anchors per image but the '
                       r"student's targets cover 2 \(label weights "
                       r'\(2, 2\) for 2 images\).*anchor generator'):
        dense(inputs)


# ----------------------------------------------------------------------------
# top_class_deltas: 2 RoIs, C = 2 classes (+ background last), D = 2

ROI_TEACHER_LOGITS = [[2.0, 0.0, 5.0],   # background most probable: class 0
                      [0.0, 1.0, -1.0]]  # class 1


def fg_best():
    """(class, probability) of the most probable foreground class."""
    out = []
    for row in ROI_TEACHER_LOGITS:
        probs = softmax(row)[:2]
        best = max(range(2), key=lambda c: probs[c])
        out.append((best, probs[best]))
    return out


def test_top_class_deltas_class_specific():
    student = leaf([[1., 2., 3., 4.], [5., 6., 7., 8.]])
    teacher = leaf([[-1., -2., -3., -4.], [-5., -6., -7., -8.]])
    pred, target, weight = top_class_deltas(
        student, teacher, torch.tensor(ROI_TEACHER_LOGITS), 2)
    assert [b for b, _ in fg_best()] == [0, 1]
    torch.testing.assert_close(pred, torch.tensor([[1., 2.], [7., 8.]]))
    torch.testing.assert_close(target, torch.tensor([[-1., -2.],
                                                     [-7., -8.]]))
    torch.testing.assert_close(weight, torch.tensor([p for _, p in
                                                     fg_best()]))
    assert not target.requires_grad and not weight.requires_grad
    pred.sum().backward()
    torch.testing.assert_close(student.grad, torch.tensor(
        [[1., 1., 0., 0.], [0., 0., 1., 1.]]))  # the chosen class only
    assert teacher.grad is None


def test_top_class_deltas_class_agnostic():
    student = leaf([[1., 2.], [3., 4.]])
    teacher = leaf([[5., 6.], [7., 8.]])
    pred, target, weight = top_class_deltas(
        student, teacher, torch.tensor(ROI_TEACHER_LOGITS), 2)
    assert pred is student  # one delta set, used for every class
    torch.testing.assert_close(target, teacher.detach())
    assert not target.requires_grad
    torch.testing.assert_close(weight, torch.tensor([p for _, p in
                                                     fg_best()]))


def test_top_class_deltas_wrong_count_raises():
    with pytest.raises(ValueError,
                       match=r'^3 deltas per RoI fit neither class-agnostic '
                       r'\(2\) nor class-specific regression \(2 classes x '
                       r'2\)$'):
        top_class_deltas(torch.zeros(2, 3), torch.zeros(2, 3),
                         torch.tensor(ROI_TEACHER_LOGITS), 2)


# ----------------------------------------------------------------------------
# roi_amplifier_loss: 3 RoIs, C = 2, D = 4, in float64

TAU, CLS_WEIGHT, REG_WEIGHT = 2.0, 0.5, 1.5
R_STUDENT_LOGITS = [[0.2, -0.4, 1.0], [1.5, 0.3, -0.2], [-1.0, 0.0, 0.5]]
R_TEACHER_LOGITS = [[1.0, 0.0, 0.5], [0.0, 2.0, -1.0], [-0.5, -0.6, 2.0]]
R_STUDENT_DELTAS = [[0.1, 0.2, -0.3, 0.4, 0.0, -0.1, 0.2, 0.3],
                    [-0.2, 0.5, 0.1, 0.0, 0.3, 0.3, -0.4, 0.1],
                    [0.0, -0.5, 0.2, 0.2, 0.1, 0.0, 0.0, -0.2]]
R_TEACHER_DELTAS = [[0.0, 0.1, 0.1, 0.2, -0.2, 0.0, 0.1, 0.0],
                    [0.1, 0.2, 0.0, -0.3, 0.1, 0.5, -0.1, 0.2],
                    [0.3, 0.0, 0.0, 0.1, -0.1, 0.2, 0.3, 0.0]]


def kl(tau=TAU, weight=CLS_WEIGHT):
    return MODELS.build(dict(type='mmrazor.KLDivergence', tau=tau,
                             reduction='batchmean', loss_weight=weight))


def l1(weight=REG_WEIGHT):
    return MODELS.build(dict(type='mmdet.L1Loss', loss_weight=weight))


def hand_roi_terms(teacher_logits=R_TEACHER_LOGITS):
    """cls: a T² (1/R) Σ_r Σ_c q_t (log q_t − log q_s), q = softmax(z/T);
    reg: b Σ_r w_r |d_s − d_t|_1 / (D Σ_r w_r) on the deltas of c*_r."""
    num = len(R_STUDENT_LOGITS)
    cls = 0.0
    for z_s, z_t in zip(R_STUDENT_LOGITS, teacher_logits):
        q_s = softmax([z / TAU for z in z_s])
        q_t = softmax([z / TAU for z in z_t])
        cls += sum(t * (math.log(t) - math.log(s))
                   for s, t in zip(q_s, q_t) if t > 0)
    cls *= CLS_WEIGHT * TAU**2 / num
    numerator = weights = 0.0
    for r in range(num):
        probs = softmax(teacher_logits[r])[:2]
        best = max(range(2), key=lambda c: probs[c])
        cols = slice(4 * best, 4 * best + 4)
        numerator += probs[best] * sum(
            abs(s - t) for s, t in zip(R_STUDENT_DELTAS[r][cols],
                                       R_TEACHER_DELTAS[r][cols]))
        weights += probs[best]
    reg = REG_WEIGHT * numerator / (4 * weights) if weights else 0.0
    return cls, reg


def roi_inputs(teacher_logits=R_TEACHER_LOGITS):
    dtype = torch.float64
    return (leaf(R_STUDENT_LOGITS, dtype), leaf(R_STUDENT_DELTAS, dtype),
            leaf(teacher_logits, dtype), leaf(R_TEACHER_DELTAS, dtype))


def test_roi_terms_equal_hand_computation():
    cls, reg = hand_roi_terms()
    assert cls > 0 and reg > 0
    value = roi_amplifier_loss(*roi_inputs(), 4, kl(), l1())
    cls_value = roi_amplifier_loss(*roi_inputs(), 4, kl(), l1(0.0))
    reg_value = roi_amplifier_loss(*roi_inputs(), 4, kl(weight=0.0), l1())
    assert value.dtype == torch.float64
    for got, expected in ((cls_value, cls), (reg_value, reg),
                          (value, cls + reg)):
        assert got.item() == pytest.approx(expected, rel=1e-12)


def test_roi_all_zero_weights_give_exactly_zero_reg():
    # every foreground probability underflows to exactly 0
    teacher_logits = [[-1000.0, -1000.0, 0.0]] * 3
    cls, reg = hand_roi_terms(teacher_logits)
    assert reg == 0.0
    inputs = roi_inputs(teacher_logits)
    reg_only = roi_amplifier_loss(*inputs, 4, zero_loss, l1())
    assert reg_only.item() == 0.0
    value = roi_amplifier_loss(*inputs, 4, kl(), l1())
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(cls, rel=1e-12)
    value.backward()
    assert torch.isfinite(inputs[0].grad).all()
    assert inputs[1].grad is not None and (inputs[1].grad == 0).all()


def test_roi_gradients_reach_student_inputs_only():
    s_logits, s_deltas, t_logits, t_deltas = inputs = roi_inputs()
    roi_amplifier_loss(*inputs, 4, kl(), l1()).backward()
    assert s_logits.grad is not None and s_logits.grad.abs().sum() > 0
    assert s_deltas.grad is not None
    # only the 4 deltas of each RoI's top teacher class get a gradient
    for r in range(3):
        probs = softmax(R_TEACHER_LOGITS[r])[:2]
        best = max(range(2), key=lambda c: probs[c])
        used = (s_deltas.grad[r] != 0).nonzero().flatten().tolist()
        assert used == list(range(4 * best, 4 * best + 4))
    assert t_logits.grad is None and t_deltas.grad is None


def test_roi_zero_when_student_equals_teacher():
    value = roi_amplifier_loss(
        torch.tensor(R_TEACHER_LOGITS), torch.tensor(R_TEACHER_DELTAS),
        torch.tensor(R_TEACHER_LOGITS), torch.tensor(R_TEACHER_DELTAS), 4,
        kl(), l1())
    assert abs(value.item()) < 1e-7


# ----------------------------------------------------------------------------
# roi_amplifier_loss with decode (rotated heads): the boxes of the top class
# c*, a box distance weighted by w, / sum(w), in float64. Same 3 RoIs and
# head outputs as above; RoI r's box = its RoI + the deltas.

R_ROIS = [[0., 0., 4., 4.], [2., 2., 6., 8.], [10., 10., 12., 13.]]


def add_to_rois(calls=None):
    """decode(deltas) = RoIs + deltas, recording (deltas, grad enabled)."""
    def decode(deltas):
        if calls is not None:
            calls.append((deltas, torch.is_grad_enabled()))
        return torch.tensor(R_ROIS, dtype=deltas.dtype) + deltas
    return decode


def box_l1(pred, target, weight, avg_factor):
    """A box distance, one value per box: Σ_r w_r |b_s − b_t|_1 / avg."""
    return (weight * (pred - target).abs().sum(-1)).sum() / avg_factor


def hand_decoded_reg(teacher_logits=R_TEACHER_LOGITS):
    """Σ_r w_r |(a_r + d_s) − (a_r + d_t)|_1 / Σ_r w_r on the deltas of
    c*_r (0 when every w_r is 0)."""
    numerator = weights = 0.0
    for r in range(3):
        probs = softmax(teacher_logits[r])[:2]
        best = max(range(2), key=lambda c: probs[c])
        cols = slice(4 * best, 4 * best + 4)
        box_s = [a + d for a, d in zip(R_ROIS[r], R_STUDENT_DELTAS[r][cols])]
        box_t = [a + d for a, d in zip(R_ROIS[r], R_TEACHER_DELTAS[r][cols])]
        numerator += probs[best] * sum(abs(s - t)
                                       for s, t in zip(box_s, box_t))
        weights += probs[best]
    return numerator / weights if weights else 0.0


def test_roi_decoded_reg_runs_in_float64_on_the_top_class_boxes():
    calls, seen = [], {}

    def reg_loss(pred, target, weight, avg_factor):
        seen.update(pred=pred, target=target, weight=weight,
                    avg_factor=avg_factor)
        return box_l1(pred, target, weight, avg_factor)

    s_logits, s_deltas = leaf(R_STUDENT_LOGITS), leaf(R_STUDENT_DELTAS)
    t_logits, t_deltas = leaf(R_TEACHER_LOGITS), leaf(R_TEACHER_DELTAS)
    value = roi_amplifier_loss(s_logits, s_deltas, t_logits, t_deltas, 4,
                               zero_loss, reg_loss, add_to_rois(calls))
    assert value.dtype == torch.float32  # back to the cls term's dtype
    assert value.item() == pytest.approx(hand_decoded_reg(), rel=1e-6)
    # the teacher's boxes first, without a graph; then the student's; both
    # from the [R, D] deltas of c*
    assert [grad for _, grad in calls] == [False, True]
    assert all(deltas.shape == (3, 4) for deltas, _ in calls)
    for key in ('pred', 'target', 'weight', 'avg_factor'):
        assert seen[key].dtype == torch.float64, key
    assert seen['pred'].shape == seen['target'].shape == (3, 4)
    assert seen['pred'].requires_grad and not seen['target'].requires_grad
    probs = [softmax(row)[:2] for row in R_TEACHER_LOGITS]
    weights = [max(p) for p in probs]
    # (softmax in the inputs' float32, then float64)
    torch.testing.assert_close(seen['weight'],
                               torch.tensor(weights, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    assert seen['avg_factor'].item() == pytest.approx(sum(weights),
                                                      rel=1e-6)


def test_roi_decoded_terms_equal_hand_computation_in_float64():
    cls, _ = hand_roi_terms()
    reg = hand_decoded_reg()
    assert reg > 0
    value = roi_amplifier_loss(*roi_inputs(), 4, kl(), box_l1,
                               add_to_rois())
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(cls + reg, rel=1e-12)
    # boxes = RoIs + deltas have the deltas' L1, divided by sum(w) instead
    # of the deltas' D sum(w): one distance per box, not D
    assert reg == pytest.approx(4 * hand_roi_terms()[1] / REG_WEIGHT,
                                rel=1e-12)


def test_roi_decoded_all_zero_weights_give_exactly_zero_reg():
    teacher_logits = [[-1000.0, -1000.0, 0.0]] * 3
    assert hand_decoded_reg(teacher_logits) == 0.0
    inputs = roi_inputs(teacher_logits)
    value = roi_amplifier_loss(*inputs, 4, zero_loss, box_l1, add_to_rois())
    assert value.item() == 0.0
    value.backward()
    assert inputs[1].grad is not None and (inputs[1].grad == 0).all()


def test_roi_decoded_gradients_reach_student_inputs_only():
    s_logits, s_deltas, t_logits, t_deltas = inputs = roi_inputs()
    roi_amplifier_loss(*inputs, 4, kl(), box_l1, add_to_rois()).backward()
    assert s_logits.grad is not None and s_logits.grad.abs().sum() > 0
    for r in range(3):  # only the 4 deltas of c*_r
        probs = softmax(R_TEACHER_LOGITS[r])[:2]
        best = max(range(2), key=lambda c: probs[c])
        used = (s_deltas.grad[r] != 0).nonzero().flatten().tolist()
        assert used == list(range(4 * best, 4 * best + 4))
    assert t_logits.grad is None and t_deltas.grad is None


def test_roi_decoded_zero_when_student_equals_teacher():
    value = roi_amplifier_loss(
        torch.tensor(R_TEACHER_LOGITS), torch.tensor(R_TEACHER_DELTAS),
        torch.tensor(R_TEACHER_LOGITS), torch.tensor(R_TEACHER_DELTAS), 4,
        kl(), box_l1, add_to_rois())
    assert abs(value.item()) < 1e-7


# ----------------------------------------------------------------------------
# the modules: no head, no parameters, checked sub-losses

LOSSES = [(DenseAmplifierLoss, 'bbox_head', ('KDQualityFocalLoss',
                                             'GIoULoss')),
          (RoIAmplifierLoss, 'roi_head', ('KLDivergence', 'L1Loss'))]


def build(cls, **kwargs):
    kwargs.setdefault('amplifier', 'teacher')
    return MODELS.build(dict(type=cls.__name__, _scope_='mmrazor', **kwargs))


@pytest.mark.parametrize('cls, head_part, sub_losses', LOSSES)
def test_module_holds_no_head_and_no_parameters(cls, head_part, sub_losses):
    loss = build(cls)
    assert isinstance(loss, AmplifierLoss)
    assert loss.head_part == head_part
    assert list(loss.parameters()) == [] and list(loss.buffers()) == []
    assert loss.state_dict() == {}
    # its only submodules are the two sub-losses
    assert [name for name, _ in loss.named_children()] == ['cls_loss',
                                                          'reg_loss']
    assert tuple(type(m).__name__ for m in loss.children()) == sub_losses
    assert not any(isinstance(v, torch.nn.Module)
                   for v in vars(loss).values())


def test_amplifier_defaults_to_the_features_as_they_are():
    head = torch.nn.Identity()
    amplifier = Amplifier(head)
    assert amplifier.head is head
    assert amplifier.transform is same_features
    feats = (torch.zeros(1), torch.ones(1))
    assert same_features(feats) is feats


@pytest.mark.parametrize('cls', [DenseAmplifierLoss, RoIAmplifierLoss])
@pytest.mark.parametrize('name', ['student', 'Teacher', '', None])
def test_bad_amplifier_name_rejected(cls, name):
    with pytest.raises(ValueError,
                       match=r"^amplifier must be one of \('teacher', "
                       r"'high_frequency'\), got " + re.escape(repr(name))):
        build(cls, amplifier=name)


SUB_LOSSES = {
    DenseAmplifierLoss: dict(
        cls_loss=dict(type='mmrazor.KDQualityFocalLoss', beta=1.0),
        reg_loss=dict(type='mmdet.GIoULoss', reduction='mean')),
    RoIAmplifierLoss: dict(
        cls_loss=dict(type='mmrazor.KLDivergence', tau=3.0,
                      reduction='batchmean'),
        reg_loss=dict(type='mmdet.L1Loss')),
}


@pytest.mark.parametrize('cls', [DenseAmplifierLoss, RoIAmplifierLoss])
@pytest.mark.parametrize('part', ['cls_loss', 'reg_loss'])
@pytest.mark.parametrize('weight', [-1.0, -1e-9, float('inf')])
def test_bad_sub_loss_weight_rejected(cls, part, weight):
    cfg = dict(SUB_LOSSES[cls][part], loss_weight=weight)
    with pytest.raises(ValueError,
                       match=rf'^{cls.__name__}\.{part}\.loss_weight must '
                       rf'be a non-negative number, got {weight!r}$'):
        build(cls, **{part: cfg})


@pytest.mark.parametrize('cls', [DenseAmplifierLoss, RoIAmplifierLoss])
def test_zero_sub_loss_weight_accepted(cls):
    loss = build(cls, cls_loss=dict(SUB_LOSSES[cls]['cls_loss'],
                                    loss_weight=0.0),
                 reg_loss=dict(SUB_LOSSES[cls]['reg_loss'], loss_weight=0))
    assert loss.cls_loss.loss_weight == 0 and loss.reg_loss.loss_weight == 0


@pytest.mark.parametrize('tau', [0, 0.0, -1.0, float('nan')])
def test_non_positive_tau_rejected(tau):
    cfg = dict(SUB_LOSSES[RoIAmplifierLoss]['cls_loss'], tau=tau)
    with pytest.raises(ValueError,
                       match=r'^RoIAmplifierLoss\.cls_loss\.tau must be a '
                       rf'positive number, got {tau!r}$'):
        build(RoIAmplifierLoss, cls_loss=cfg)


def test_dense_loss_rejects_teacher_outputs_of_another_shape():
    """Both sides must have the student's [N, A, K] layout: a reshape would
    otherwise realign the values silently."""
    from ds2d2_mmrazor.models.losses import dense_amplifier_loss
    s_cls, s_reg = torch.zeros(2, 3, 2), torch.zeros(2, 3, 4)
    anchors, weights = torch.zeros(3, 4), torch.ones(2, 3)

    def call(t_cls, t_reg):
        return dense_amplifier_loss(s_cls, s_reg, t_cls, t_reg, anchors,
                                    weights, 1.0, lambda a, d: a + d,
                                    None, None)

    with pytest.raises(ValueError, match=r'student logits \(2, 3, 2\) and '
                       r'teacher logits \(2, 2, 3\)'):
        call(torch.zeros(2, 2, 3), s_reg)
    with pytest.raises(ValueError, match=r'student deltas \(2, 3, 4\) and '
                       r'teacher deltas \(2, 4, 3\)'):
        call(s_cls, torch.zeros(2, 4, 3))


def test_top_class_deltas_rejects_teacher_deltas_of_another_shape():
    from ds2d2_mmrazor.models.losses import top_class_deltas
    with pytest.raises(ValueError, match=r'student deltas \(3, 8\) and '
                       r'teacher deltas \(3, 4\)'):
        top_class_deltas(torch.zeros(3, 8), torch.zeros(3, 4),
                         torch.zeros(3, 3), 4)
    with pytest.raises(ValueError, match='one row per RoI'):
        top_class_deltas(torch.zeros(2, 8), torch.zeros(2, 8),
                         torch.zeros(3, 3), 4)
