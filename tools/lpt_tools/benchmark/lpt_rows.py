"""The table of the LPT benchmark (``--mode lpt``): its rows, and the
speed-ups of the shared prefix expected from block FLOPs (see
``docs/benchmarks/index.md``)."""
import statistics
from typing import Dict, List, Sequence, Tuple

from ..tables import format_table as markdown_table
from .lpt import RUNS
from .measure import MIB

__all__ = [
    'BACKWARD_FACTOR', 'RUN_LABELS', 'block_flops', 'expected_speedups',
    'build_rows', 'format_table'
]

# Backward / forward cost of a frozen block (activation gradients only).
BACKWARD_FACTOR = 1.0

RUN_LABELS = {
    'phase1_train': 'phase-1 train',
    'phase2_train_shared': 'phase-2 train, shared-prefix',
    'phase2_train_naive': 'phase-2 train, naive',
    'phase1_infer': 'phase-1 inference',
    'phase2_infer_shared': 'phase-2 inference, shared-prefix',
    'phase2_infer_naive': 'phase-2 inference, naive',
}
UNIT_FORMATS = {
    'params': '{:d}',
    '%': '{:.3f}',
    'MiB': '{:.3f}',
    'img/s': '{:.2f}',
    'req/s': '{:.1f}',
    'images': '{:.2f}',
    'x': '{:.3f}',
    'ms': '{:.2f}',
    's': '{:.2f}',
    'abs': '{:.2e}',
    'lines': '{:d}',
}


def block_flops(tokens: int, embed_dims: int, ffn_dims: int) -> int:
    """FLOPs of one ViT block on ``tokens`` tokens (docs/benchmarks/)."""
    return (8 * tokens * embed_dims**2 + 4 * tokens * embed_dims * ffn_dims +
            4 * tokens**2 * embed_dims)


def expected_speedups(geometry: dict,
                      beta: float = BACKWARD_FACTOR) -> Dict[str, float]:
    """Naive / shared-prefix cost ratios of phase 2 from block FLOPs."""
    L, k = geometry['num_layers'], geometry['share_blocks']
    C, F = geometry['embed_dims'], geometry['ffn_dims']
    N, P, P2 = (geometry['tokens'], geometry['prompt_length'],
                geometry['group_prompt_length'])
    f0, f1 = block_flops(N + P, C, F), block_flops(N + P + P2, C, F)
    infer_shared = L * f0 + (L - k) * f1
    infer_naive = infer_shared + k * f0
    backward = beta * (L - k) * f1
    return dict(
        train=(infer_naive + backward) / (infer_shared + backward),
        infer=infer_naive / infer_shared)


def build_rows(figures: dict, runs: Dict[str, dict],
               expected: Dict[str,
                              float]) -> List[Tuple[str, str, object, str]]:
    """(key, metric, value, unit) of every table row, in order."""
    rows = []
    for phase in (1, 2):
        total, trainable = figures[f'phase{phase}_params']
        rows += [
            (f'phase{phase}_params_total', f'phase-{phase} parameters, total',
             total, 'params'),
            (f'phase{phase}_params_trainable',
             f'phase-{phase} parameters, trainable', trainable, 'params'),
            (f'phase{phase}_trainable_pct', f'phase-{phase} trainable ratio',
             100. * trainable / total, '%'),
        ]
    prompt_bytes, full_bytes = figures['ckpt_bytes']
    rows += [
        ('ckpt_prompt_mib', 'phase-2 prompt-only checkpoint',
         prompt_bytes / MIB, 'MiB'),
        ('ckpt_full_mib', 'phase-2 full checkpoint', full_bytes / MIB, 'MiB'),
        ('ckpt_ratio_pct', 'prompt-only / full checkpoint',
         100. * prompt_bytes / full_bytes, '%'),
    ]
    for key, *_ in RUNS:
        run, label = runs[key], RUN_LABELS[key]
        peak, base = run['peak_bytes'], run['setup_bytes']
        rows += [
            (f'{key}_img_s', f'{label} throughput',
             run['images'] / statistics.median(run['times_s']), 'img/s'),
            (f'{key}_peak_mib', f'{label} peak memory',
             None if peak is None else peak / MIB, 'MiB'),
            (f'{key}_extra_mib', f'{label} peak memory above setup',
             None if peak is None else (peak - base) / MIB, 'MiB'),
        ]
    for mode, label in (('train', 'train'), ('infer', 'inference')):
        shared = statistics.median(runs[f'phase2_{mode}_shared']['times_s'])
        naive = statistics.median(runs[f'phase2_{mode}_naive']['times_s'])
        rows += [
            (f'phase2_{mode}_speedup',
             f'phase-2 {label} speed-up, shared-prefix over naive, '
             'measured', naive / shared, 'x'),
            (f'phase2_{mode}_speedup_expected',
             f'phase-2 {label} speed-up, shared-prefix over naive, '
             'expected', expected[mode], 'x'),
        ]
    return rows


def format_table(rows: Sequence[Tuple[str, str, object, str]]) -> str:
    """The ``| metric | value | unit |`` markdown table."""
    return markdown_table(
        ('metric', 'value', 'unit'),
        [(metric, 'n/a' if value is None else UNIT_FORMATS[unit].format(value),
          unit) for _, metric, value, unit in rows],
        align_right=False)
