"""Turn a DS2D2 distillation checkpoint into a plain student checkpoint.

    python tools/convert_to_student.py \
        work_dirs/ds2d2_retina_r18_r101_dior/epoch_24.pth \
        --out work_dirs/ds2d2_retina_r18_r101_dior/student_r18.pth

A stage-3 checkpoint (MMRazor ``DS2D2Distill``) holds the student
(``architecture.*``), the teacher, the amplifier, the distiller's adapter and
the training state. The output keeps only the student's weights, with the
prefix stripped (``student.*`` is accepted too), and the checkpoint's
``meta``, whose ``dataset_meta`` gives the class names and palette; its
``cfg`` becomes the student detector's config. Optimizer, message hub and
schedulers are dropped. The result loads with the student config:

    init_detector('configs/retinanet_r18_fpn_2x_dior.py', 'student_r18.pth')
    DetInferencer(model='configs/retinanet_r18_fpn_2x_dior.py',
                  weights='student_r18.pth')
"""
import argparse
import os
import os.path as osp
from collections import Counter
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config

import ds2d2_mmrazor  # noqa: F401  (allows Runner checkpoints in torch.load)

# For each part of a distillation model: the state-dict prefixes it may be
# saved under and its config key in the algorithm's model config.
PARTS: Dict[str, Sequence[str]] = dict(
    student=('architecture', 'student'), teacher=('teacher', ))


def _part_config(cfg_text: str, key: str) -> Optional[str]:
    """The config text with ``model`` replaced by ``model[key]``, or None
    when the saved config has no such part."""
    cfg = Config.fromstring(cfg_text, file_format='.py')
    part = cfg.get('model', {}).get(key)
    if not isinstance(part, dict):
        return None
    cfg.model = part
    return cfg.pretty_text


def extract_detector(checkpoint: dict, part: str = 'student') -> dict:
    """One detector of a distillation checkpoint, as a plain checkpoint.

    Args:
        checkpoint (dict): A loaded checkpoint (``torch.load``), with a
            ``state_dict`` (or itself a state dict) and optionally ``meta``.
        part (str): ``'student'`` (keys ``architecture.*`` or
            ``student.*``) or ``'teacher'`` (keys ``teacher.*``). Defaults
            to ``'student'``.

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}``: the part's weights with
        the prefix stripped (same tensors) and a copy of ``meta`` whose
        ``cfg`` (if the checkpoint saved its config) is that of the part's
        detector.
    """
    if part not in PARTS:
        raise ValueError(f'part must be one of {list(PARTS)}, got {part!r}')
    state = checkpoint.get('state_dict', checkpoint)
    for key in PARTS[part]:
        prefix = key + '.'
        weights = {k[len(prefix):]: v for k, v in state.items()
                   if k.startswith(prefix)}
        if weights:
            break
    else:
        found = Counter(k.split('.')[0] for k in state)
        prefixes = ', '.join(f'{p}.* ({n})' for p, n in found.items())
        expected = ' or '.join(f'{k}.*' for k in PARTS[part])
        raise ValueError(
            f'the checkpoint has no {part} weights (keys {expected}); found '
            f'{prefixes or "no keys"}. A plain detector checkpoint needs no '
            'conversion: load it directly with its config.')
    meta = dict(checkpoint.get('meta', {}))
    if 'cfg' in meta:
        cfg_text = _part_config(meta.pop('cfg'), key)
        if cfg_text is not None:
            meta['cfg'] = cfg_text
    return dict(meta=meta, state_dict=weights)


def extract_student_state(checkpoint: dict) -> dict:
    """The student of a distillation checkpoint, as a plain checkpoint.

    ``extract_detector(checkpoint, 'student')``: keys ``architecture.*`` (or
    ``student.*``) with the prefix stripped, plus ``meta``.
    """
    return extract_detector(checkpoint, 'student')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='distillation checkpoint (.pth)')
    parser.add_argument('--out', required=True,
                        help='where to write the student checkpoint')
    parser.add_argument('--part', default='student', choices=list(PARTS),
                        help='which detector to keep (default: student)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    checkpoint = torch.load(args.checkpoint, map_location='cpu')
    converted = extract_detector(checkpoint, args.part)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    torch.save(converted, args.out)
    print(f'{args.out}: {len(converted["state_dict"])} {args.part} tensors '
          f'from {args.checkpoint}')


if __name__ == '__main__':
    main()
