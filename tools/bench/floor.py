"""The floor of a DS2D2 step: the amplifier-head passes it cannot avoid.

Each amplifier loss runs its frozen head (an :class:`Amplifier`: the
head and the feature view it reads) on the teacher's FPN features under
``no_grad`` and on the student's, forward and backward to the features.
Those passes are rebuilt here from public module calls, on the inputs a
DS2D2 step gave the losses, read back from the distiller's recorders as
``DS2D2Distiller.compute_distill_losses`` reads them
(``DS2D2Distiller.loss_inputs``): the same features
and, for RoI heads, the same sampled RoIs.

- dense heads (``head_part`` ``bbox_head``, ``DenseAmplifierLoss``):
  ``head(transform(feats))``;
- RoI heads (``head_part`` ``roi_head``, ``RoIAmplifierLoss``):
  ``bbox_roi_extractor(transform(feats)[:num_inputs], rois)``, then
  ``bbox_head`` (after ``shared_head`` if there is one).

For RoI heads, every RoI extraction of a step (the student's own in
``StandardRoIHead.bbox_loss``, then each RoI amplifier's on student and on
teacher features) is also rebuilt alone, so that its cost, mmcv's RoIAlign,
can be reported.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

Pass = Callable[[], None]
Forward = Callable[[], List[Tensor]]
#: the amplifier losses' inputs that the passes read (their forward's
#: argument names, the keys of their ``loss_forward_mappings``)
FEATURES = ('student_feats', 'teacher_feats')
ROIS = 'sampling_results'


def amplifier_records(distiller) -> Dict[str, dict]:
    """The inputs each amplifier loss gets from the recorders now.

    Args:
        distiller (DS2D2Distiller): After a step (``algorithm.loss``): its
            recorders hold that step's data.

    Returns:
        dict: ``loss name -> {argument: value}``, as
        ``compute_distill_losses`` passes them (without ``amplifier``).

    Raises:
        KeyError: If a loss's mapping lacks an input the passes need.
    """
    records = {}
    for name, loss in distiller.amplifier_losses():
        mapping = distiller.loss_forward_mappings[name]
        needed = FEATURES + ((ROIS, ) if loss.head_part == 'roi_head'
                             else ())
        missing = [key for key in needed if key not in mapping]
        if missing:
            raise KeyError(
                f'loss_forward_mappings[{name!r}] has no {missing}, which '
                f'{type(loss).__name__} takes: map them as configs/_base_/'
                'ds2d2_dense-head.py and ds2d2_roi-head.py do')
        records[name] = distiller.loss_inputs(name)
    return records


def step_records(algorithm, data: dict) -> Dict[str, dict]:
    """Run one DS2D2 forward (``algorithm.loss``, no grad) and return
    :func:`amplifier_records` of it."""
    with torch.no_grad():
        algorithm.loss(data['inputs'], data['data_samples'])
    return amplifier_records(algorithm.distiller)


def sampled_rois(sampling_results: Sequence) -> Tensor:
    """[R, 1 + box] RoIs of the sampled priors (batch index first), as the
    RoI heads and ``RoIAmplifierLoss`` build them."""
    from mmdet.structures.bbox import bbox2roi, get_box_tensor
    return bbox2roi([get_box_tensor(res.priors).detach()
                     for res in sampling_results])


def leaves(feats: Sequence[Tensor], grad: bool) -> Tuple[Tensor, ...]:
    """Detached copies of ``feats`` (views of the same storage) that
    require grad if ``grad``: backward stops at them."""
    return tuple(f.detach().requires_grad_(grad) for f in feats)


def tensors(outputs) -> List[Tensor]:
    """The tensors of nested tuples / lists, in order (None skipped)."""
    if outputs is None:
        return []
    if isinstance(outputs, Tensor):
        return [outputs]
    return [t for out in outputs for t in tensors(out)]


def head_forward(head_part: str, head: nn.Module,
                 transform: Callable, feats: Tuple[Tensor, ...],
                 rois: Optional[Tensor]) -> Forward:
    """The amplifier head's forward on ``feats``, as its loss calls it.

    Args:
        head_part (str): The loss's ``head_part``: 'bbox_head' (dense) or
            'roi_head'.
        head (nn.Module): The frozen head (``Amplifier.head``).
        transform (callable): The feature view it reads.
        feats (tuple[Tensor]): FPN levels.
        rois (Tensor, optional): [R, 1 + box] RoIs; RoI heads only.

    Returns:
        callable: ``() -> [outputs]``.

    Raises:
        ValueError: For another ``head_part``.
    """
    if head_part == 'bbox_head':
        return lambda: tensors(head(transform(feats)))
    if head_part == 'roi_head':
        def forward() -> List[Tensor]:
            extractor = head.bbox_roi_extractor
            roi_feats = extractor(transform(feats)[:extractor.num_inputs],
                                  rois)
            if head.with_shared_head:
                roi_feats = head.shared_head(roi_feats)
            return tensors(head.bbox_head(roi_feats))
        return forward
    raise ValueError(f"head_part {head_part!r}: the floor times 'bbox_head' "
                     "(dense) and 'roi_head' amplifier heads only")


def with_backward(forward: Forward, inputs: Sequence[Tensor]) -> Pass:
    """``forward()``, then backward of ones from its outputs to ``inputs``
    (leaves; their grads are reset first)."""
    def run() -> None:
        for x in inputs:
            x.grad = None
        outputs = forward()
        torch.autograd.backward(outputs, [torch.ones_like(o)
                                          for o in outputs])
    return run


def without_grad(forward: Forward) -> Pass:
    """``forward()`` under ``no_grad``."""
    def run() -> None:
        with torch.no_grad():
            forward()
    return run


def head_passes(algorithm, records: Dict[str, dict]) -> Dict[str, Pass]:
    """The amplifier-head passes of one DS2D2 step.

    Args:
        algorithm (DS2D2Distill): Its distiller's amplifier losses and
            heads.
        records (dict): :func:`amplifier_records` of a step.

    Returns:
        dict: Per amplifier loss, ``'<loss>/student'`` (forward + backward
        to the student features) and ``'<loss>/teacher'`` (no grad).
    """
    distiller = algorithm.distiller
    passes = {}
    for name, loss in distiller.amplifier_losses():
        record = records[name]
        head, transform = distiller.amplifier_args[name]
        rois = sampled_rois(record[ROIS]) \
            if loss.head_part == 'roi_head' else None
        student = leaves(record['student_feats'], True)
        teacher = leaves(record['teacher_feats'], False)
        passes[f'{name}/student'] = with_backward(
            head_forward(loss.head_part, head, transform, student, rois),
            student)
        passes[f'{name}/teacher'] = without_grad(
            head_forward(loss.head_part, head, transform, teacher, rois))
    return passes


def roi_extractions(algorithm, records: Dict[str, dict]
                    ) -> Tuple[List[Pass], int]:
    """Every RoI extraction of one DS2D2 step, alone.

    The student's own (its ``roi_head.bbox_roi_extractor`` on its features,
    forward + backward), then per RoI amplifier loss its head's extractor
    on the (viewed) student features (forward + backward) and on the
    teacher's (no grad); the feature views are computed beforehand, so that
    only the extractions are timed.

    Args:
        algorithm (DS2D2Distill): Its student and distiller.
        records (dict): :func:`amplifier_records` of a step.

    Returns:
        tuple: The passes (none without RoI amplifier losses) and the
        number of RoIs each extracts.
    """
    distiller = algorithm.distiller
    names = [name for name, loss in distiller.amplifier_losses()
             if loss.head_part == 'roi_head']
    if not names:
        return [], 0
    passes, num_rois = [], 0

    def extraction(extractor: nn.Module, feats: Sequence[Tensor],
                   rois: Tensor, grad: bool) -> Pass:
        feats = leaves(feats[:extractor.num_inputs], grad)

        def forward() -> List[Tensor]:
            return [extractor(feats, rois)]

        return with_backward(forward, feats) if grad \
            else without_grad(forward)

    first = records[names[0]]
    rois = sampled_rois(first[ROIS])
    passes.append(extraction(algorithm.student.roi_head.bbox_roi_extractor,
                             first['student_feats'], rois, True))
    for name in names:
        record = records[name]
        head, transform = distiller.amplifier_args[name]
        rois = sampled_rois(record[ROIS])
        num_rois = rois.shape[0]
        with torch.no_grad():
            student = transform(tuple(record['student_feats']))
            teacher = transform(tuple(record['teacher_feats']))
        passes += [extraction(head.bbox_roi_extractor, student, rois, True),
                   extraction(head.bbox_roi_extractor, teacher, rois, False)]
    return passes, num_rois


def run_all(passes: Sequence[Pass]) -> Pass:
    """One callable running ``passes`` in order."""
    passes = list(passes)

    def run() -> None:
        for fn in passes:
            fn()
    return run


def floor_cases(algorithm, records: Dict[str, dict]
                ) -> Tuple[Dict[str, Pass], dict]:
    """The timed parts of the floor, and what they cover.

    Returns:
        tuple: ``head_passes`` (all of :func:`head_passes`) and, for RoI
        heads, ``roi_extractions`` (all of :func:`roi_extractions`); and
        ``head_passes`` (how many), ``extractions`` and ``rois`` (RoIs per
        extraction; both None for dense heads).
    """
    passes = head_passes(algorithm, records)
    cases = dict(head_passes=run_all(passes.values()))
    extractions, num_rois = roi_extractions(algorithm, records)
    if extractions:
        cases['roi_extractions'] = run_all(extractions)
    return cases, dict(head_passes=len(passes),
                       extractions=len(extractions) or None,
                       rois=num_rois if extractions else None)
