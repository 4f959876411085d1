"""Task loss and distillation terms over training, from MMEngine's logs."""
import json
from typing import Dict, List, Optional, Tuple

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Curve = Tuple[List[int], List[float]]

TASK_LOSS = 'task loss'


def read_scalars(path: str) -> List[dict]:
    """Read an MMEngine ``vis_data/scalars.json`` (one JSON object a line).

    Args:
        path (str): The file.

    Returns:
        list[dict]: The records, in file order (blank lines skipped).
    """
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(
                    f'{path}:{number} is not a JSON object ({e}); expected '
                    "MMEngine's vis_data/scalars.json, one object a line"
                ) from None
    return records


def loss_curves(path: str) -> Dict[str, Curve]:
    """The task loss and each distillation term of a training run.

    Training lines are those with MMEngine's total ``'loss'``; validation
    lines (``coco/bbox_mAP`` ..., no ``'loss'``) are skipped. The x value is
    the global iteration (``'iter'``, else ``'step'``). The task loss is the
    sum of the ``student.*`` loss terms in a distillation run (MMRazor
    prefixes the student's own losses), else the total ``'loss'``; every
    ``distill.*`` key is a curve of its own.

    Args:
        path (str): A ``vis_data/scalars.json``.

    Returns:
        dict[str, tuple[list[int], list[float]]]: ``'task loss'`` first,
        then the ``distill.*`` terms in order of appearance; each
        ``(iterations, values)``.
    """
    records = read_scalars(path)
    train = [r for r in records if 'loss' in r]
    if not train:
        keys = sorted({k for r in records for k in r})
        raise ValueError(
            f'{path} has no training loss lines (objects with a "loss" key, '
            'written by MMEngine\'s LoggerHook while training); found '
            f'{len(records)} lines with keys {keys}. Pass the '
            'vis_data/scalars.json of a training run.')
    curves: Dict[str, Curve] = {TASK_LOSS: ([], [])}
    for record in train:
        step = int(record.get('iter', record.get('step')))
        student = [v for k, v in record.items()
                   if k.startswith('student.') and 'loss' in k]
        curves[TASK_LOSS][0].append(step)
        curves[TASK_LOSS][1].append(
            float(sum(student)) if student else float(record['loss']))
        for key, value in record.items():
            if key.startswith('distill.'):
                xs, ys = curves.setdefault(key, ([], []))
                xs.append(step)
                ys.append(float(value))
    return curves


def plot_losses(log_files: Dict[str, str],
                out_file: Optional[str] = None
                ) -> Tuple[Figure, Dict[str, Dict[str, Curve]]]:
    """Plot task loss and distillation terms over iterations, per run.

    One subplot per run, stacked, log y-axis (the DS2D2 terms differ by
    orders of magnitude, e.g. ``distill.loss_low`` weighs 1e-5). Curves as
    :func:`loss_curves` reads them.

    Args:
        log_files (dict[str, str]): Per run name (the subplot title), its
            MMEngine ``vis_data/scalars.json``.
        out_file (str, optional): Where to write the PNG. Defaults to None.

    Returns:
        tuple[Figure, dict[str, dict[str, tuple[list[int], list[float]]]]]:
        The figure and, per run, the plotted curves.
    """
    if not log_files:
        raise ValueError('log_files is empty: give {run name: path to '
                         'vis_data/scalars.json}')
    series = {name: loss_curves(path) for name, path in log_files.items()}
    fig = Figure(figsize=(8, 3.5 * len(series)), layout='constrained')
    axes = fig.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (name, curves) in zip(axes, series.items()):
        for label, (xs, ys) in curves.items():
            ax.plot(xs, ys, marker='.' if len(xs) < 50 else None,
                    label=label, linewidth=2 if label == TASK_LOSS else 1)
        ax.set_yscale('log')
        ax.set_title(name)
        ax.set_xlabel('iteration')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel('loss')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize='small')
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig, series
