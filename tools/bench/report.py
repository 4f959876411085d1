"""The benchmark's targets and its printed tables."""
from typing import List, Optional, Sequence, Tuple

#: DISW target: speed-up over the per-box reference at this input size and
#: box count (worst box type).
DISW_TARGET = dict(input=800, boxes=1000, speedup=50.0)
STREAM_SHARE = 0.05
#: Step target, on any machine: DS2D2 step <= STEP_TARGET x its floor
#: (student step + teacher features + the amplifier-head passes DS2D2
#: cannot avoid, timed in the same run: bench.floor).
STEP_TARGET = 1.05

FOOTNOTES = {
    'step': '\n'.join([
        'head passes: what each amplifier loss\'s frozen head costs, alone '
        '(on teacher',
        'features, no grad; on student features, forward + backward to '
        'them), timed',
        'through the heads\' module calls on the step\'s features and '
        'RoIs; floor =',
        'student step + teacher feats + head passes; floor ratio = DS2D2 '
        'step / floor',
        f'(the target, <= {STEP_TARGET:.2f}); ratio = DS2D2 step / '
        '(student step + teacher feats),',
        'overhead = the difference (reported).']),
    'step_parts': '\n'.join([
        'Each part timed alone on the step\'s inputs; share = of the DS2D2 '
        'step. RoI',
        'extractions (RoI heads; n/a: dense): every bbox_roi_extractor call '
        'of a DS2D2',
        'step (the student\'s own, and each RoI amplifier\'s on student '
        'and on teacher',
        'features), forward, and backward on student features.']),
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
             ('head passes', 'head_passes_ms', '{:.0f}'),
             ('floor', 'floor_ms', '{:.0f}'),
             ('floor ratio', 'floor_ratio', '{:.3f}'),
             ('ratio', 'step_ratio', '{:.3f}'),
             ('overhead', 'overhead_ms', '{:.0f}')],
    'step_parts': [('detector', 'detector', '{}'),
                   ('explicit stream', 'explicit_stream_ms', '{:.1f}'),
                   ('stream share', 'stream_share', '{:.1%}'),
                   ('RoI extractions', 'extractions', '{}'),
                   ('RoIs each', 'rois', '{}'),
                   ('RoI extractions ms', 'roi_extractions_ms',
                    '{:.1f}'),
                   ('RoI share', 'roi_share', '{:.1%}')],
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
    'step': '3. Training step, ms (median): DS2D2 vs its floor (student '
            'step + teacher features + amplifier-head passes)',
    'step_parts': '3b. Parts of the DS2D2 step, timed alone, ms (median)',
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
        add(f'{name}: DS2D2 step / (student step + teacher features + '
            'head passes)', row['floor_ratio'], f'<= {STEP_TARGET:.2f}',
            row['floor_ratio'] <= STEP_TARGET)
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
    views = dict(results, step_parts=results.get('step'))
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
