"""The benchmark's targets and its printed tables."""
from typing import List, Optional, Sequence, Tuple

#: DISW target: speed-up over the per-box reference at this input size and
#: box count (worst box type).
DISW_TARGET = dict(input=800, boxes=1000, speedup=50.0)
STREAM_SHARE = 0.05
#: The issue's step target: DS2D2 step <= 1.10 x (student step + teacher
#: features + the 4 amplifier-head passes). The head passes cannot be timed
#: apart through the public API; their cost as a share of (student step +
#: teacher features), timed apart once with the previous tool (full mode,
#: 1 thread, idle 2-core CPU), turns the target into a limit on what is
#: measured here: DS2D2 step / (student step + teacher features) <= 1.10 x
#: (1 + share).
STEP_TARGET = 1.10
HEAD_SHARE = {'retinanet': 0.876, 'faster-rcnn': 0.742,
              'rotated-retinanet': 0.513}


def step_limit(detector: str) -> float:
    """The limit of DS2D2 step / (student step + teacher features)."""
    return round(STEP_TARGET * (1 + HEAD_SHARE[detector]), 2)


FOOTNOTES = {
    'step': '\n'.join([
        'ratio = DS2D2 step / (student step + teacher feats); overhead = '
        'the difference;',
        f'limit = {STEP_TARGET:.2f} x (1 + head share). The issue\'s '
        f'target is DS2D2 step <= {STEP_TARGET:.2f} x',
        '(student step + teacher feats + 4 amplifier-head passes: 2 heads '
        'on teacher',
        'features, no grad; 2 on student features, forward + backward). '
        'Only the loss',
        'internals time the head passes apart: their share of (student '
        'step + teacher',
        'feats) was timed once with the previous tool (full mode, 1 thread, '
        'idle 2-core',
        'CPU): ' + ', '.join(f'{k} {v:.2f}' for k, v in HEAD_SHARE.items())
        + '.']),
    'memory': '\n'.join([
        'peak MB: CUDA only (n/a: not measured on CPU); saved MB: what '
        'autograd saves',
        'for backward in teacher-only passes (with grad: the same pass with '
        'grad, a',
        'control); in-step: during the teacher-only module calls of a DS2D2 '
        'step.']),
}

Column = Tuple[str, str, str]
COLUMNS = {
    'disw': [('input', 'input', '{}'), ('boxes', 'box_type', '{}'),
             ('per image', 'boxes', '{}'),
             ('disw_pyramid ms', 'fast_ms', '{:.3f}'),
             ('disw_reference ms', 'reference_ms', '{:.1f}'),
             ('speed-up', 'speedup', '{:.1f}x')],
    'stream': [('input', 'input', '{}'), ('levels', 'levels', '{}'),
               ('channels', 'channels', '{}'), ('batch', 'batch', '{}'),
               ('forward ms', 'forward_ms', '{:.1f}'),
               ('backward ms', 'backward_ms', '{:.1f}'),
               ('total ms', 'total_ms', '{:.1f}')],
    'step': [('detector', 'detector', '{}'), ('input', 'input', '{}'),
             ('DS2D2 step', 'ds2d2_step_ms', '{:.0f}'),
             ('student step', 'student_step_ms', '{:.0f}'),
             ('teacher feats', 'teacher_features_ms', '{:.0f}'),
             ('overhead', 'overhead_ms', '{:.0f}'),
             ('ratio', 'step_ratio', '{:.3f}'),
             ('limit', 'limit', '{:.2f}'),
             ('explicit stream', 'explicit_stream_ms', '{:.1f}'),
             ('stream share', 'stream_share', '{:.1%}')],
    'memory': [('detector', 'detector', '{}'),
               ('student peak MB', 'student_peak_mb', '{:.0f}'),
               ('DS2D2 peak MB', 'ds2d2_peak_mb', '{:.0f}'),
               ('ratio', 'peak_ratio', '{:.2f}'),
               ('teacher feats saved MB', 'teacher_saved_mb', '{:.1f}'),
               ('(with grad)', 'teacher_saved_grad_mb', '{:.1f}'),
               ('in-step saved MB', 'step_teacher_only_saved_mb',
                '{:.1f}'),
               ('calls', 'step_teacher_only_calls', '{}')],
    'targets': [('target', 'target', '{}'),
                ('measured', 'measured', '{:.3f}'),
                ('limit', 'limit', '{}'), ('result', 'result', '{}')],
}
TITLES = {
    'disw': '1. DISW, 5 FPN levels of one image: disw_pyramid vs '
            'disw_reference per level',
    'stream': '2. Explicit stream (WaveletConnector + DISWSpectralLoss), '
              'forward + backward',
    'step': '3. Training step, ms (median): DS2D2 vs student step + '
            'teacher features',
    'memory': '4. Memory: peak per step; bytes autograd saves in '
              'teacher-only passes',
    'targets': 'Targets',
}


def targets(results: dict) -> List[dict]:
    """Each target with its measured value and PASS / FAIL."""
    rows = []

    def add(target: str, measured: float, limit: str, ok: bool) -> None:
        rows.append(dict(target=target, measured=measured, limit=limit,
                         result='PASS' if ok else 'FAIL'))

    disw = [r for r in results.get('disw', [])
            if r['input'] == DISW_TARGET['input']
            and r['boxes'] == DISW_TARGET['boxes']]
    if disw:
        worst = min(r['speedup'] for r in disw)
        add(f"DISW speed-up vs disw_reference, {DISW_TARGET['input']} px, "
            f"{DISW_TARGET['boxes']} boxes (worst box type)", worst,
            f">= {DISW_TARGET['speedup']:.0f}",
            worst >= DISW_TARGET['speedup'])
    for row in results.get('step', []):
        name = row['detector']
        add(f'{name}: explicit stream / DS2D2 step', row['stream_share'],
            f'<= {STREAM_SHARE}', row['stream_share'] <= STREAM_SHARE)
        limit = step_limit(name)
        add(f'{name}: DS2D2 step / (student step + teacher features)',
            row['step_ratio'], f'<= {limit:.2f}', row['step_ratio'] <= limit)
    for row in results.get('memory', []):
        saved = row['teacher_saved_mb'] + row['step_teacher_only_saved_mb']
        ok = saved == 0 and row['teacher_saved_grad_mb'] > 0 and \
            row['step_teacher_only_calls'] > 0
        add(f"{row['detector']}: teacher-only passes save nothing for "
            'backward (MB)', saved, '== 0', ok)
    return rows


def _cell(value, fmt: str) -> str:
    return 'n/a' if value is None else fmt.format(value)


def table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """Rows as an aligned text table (text left-, numbers right-aligned)."""
    cells = [[_cell(row[key], fmt) for _, key, fmt in columns]
             for row in rows]
    widths = [max(len(head), *(len(c[i]) for c in cells))
              for i, (head, _, _) in enumerate(columns)]
    numeric = [all(isinstance(row[key], (int, float, type(None)))
                   for row in rows) for _, key, _ in columns]

    def line(values: Sequence[str]) -> str:
        return '  '.join(v.rjust(w) if num else v.ljust(w) for v, w, num
                         in zip(values, widths, numeric)).rstrip()

    return '\n'.join([line([h for h, _, _ in columns]),
                      line(['-' * w for w in widths])] +
                     [line(c) for c in cells])


def format_report(results: dict, note: Optional[str] = None) -> str:
    """The printed report: the run's settings, one table per section (with
    its footnote), the targets."""
    meta = results['meta']
    out = [f"DS2D2 benchmark ({meta['mode']} mode): torch {meta['torch']}, "
           f"device {meta['device']}, {meta['threads']} threads, medians "
           'of torch.utils.benchmark.Timer.blocked_autorange, seed '
           f"{meta['seed']}"]
    views = dict(results, step=[dict(r, limit=step_limit(r['detector']))
                                for r in results.get('step', [])])
    for key, title in TITLES.items():
        if views.get(key):
            out += ['', title, table(views[key], COLUMNS[key])]
            if key in FOOTNOTES:
                out.append(FOOTNOTES[key])
    for row in results.get('skipped', []):
        out.append(f"skipped {row['detector']}: {row['reason']}")
    if note:
        out.append(note)
    sections = ', '.join(f'{k} {v:.1f} s'
                         for k, v in meta['section_s'].items())
    out.append(f"wall time {meta['wall_s']:.1f} s ({sections})")
    return '\n'.join(out)
