"""The one parameter counter of the tools: trainable and frozen parameters
by LPT component, and the totals (``tools/analysis_tools/count_params.py``,
``tools/benchmark.py``, ``tools/demo.py``)."""
from typing import Dict, Tuple

import torch.nn as nn

from .tables import format_table

__all__ = [
    'COMPONENTS', 'component_of', 'count_by_component', 'count_params',
    'component_table'
]

#: Table rows, in order.
COMPONENTS = ('backbone (pretrained weights)',
              'backbone.prompt (shared prompt)', 'neck.prompt (prompt pool)',
              'neck.key (keys)', 'head', 'other')


def component_of(name: str) -> str:
    """The component (a :data:`COMPONENTS` entry) of a parameter name."""
    if name == 'backbone.prompt':
        return COMPONENTS[1]
    if name.startswith('backbone.'):
        return COMPONENTS[0]
    if name == 'neck.prompt':
        return COMPONENTS[2]
    if name == 'neck.key':
        return COMPONENTS[3]
    if name.startswith('head.'):
        return COMPONENTS[4]
    return COMPONENTS[5]


def count_by_component(model: nn.Module) -> Dict[str, Tuple[int, int]]:
    """``{component: (trainable, frozen)}`` for every :data:`COMPONENTS`;
    a parameter shared by several modules counts once."""
    counts = {name: [0, 0] for name in COMPONENTS}
    for name, param in model.named_parameters():
        counts[component_of(name)][0 if param.requires_grad else 1] += \
            param.numel()
    return {name: tuple(c) for name, c in counts.items()}


def count_params(model: nn.Module) -> Tuple[int, int]:
    """``(total, trainable)`` parameters of a model."""
    counts = count_by_component(model).values()
    trainable = sum(c[0] for c in counts)
    return trainable + sum(c[1] for c in counts), trainable


def component_table(counts: Dict[str, Tuple[int, int]]) -> str:
    """The ``| component | trainable | frozen | total |`` markdown table of
    :func:`count_by_component` and the trainable-ratio line."""
    rows = [(name, f'{t:,}', f'{f:,}', f'{t + f:,}')
            for name, (t, f) in counts.items()]
    trainable = sum(c[0] for c in counts.values())
    frozen = sum(c[1] for c in counts.values())
    total = trainable + frozen
    rows.append(('total', f'{trainable:,}', f'{frozen:,}', f'{total:,}'))
    ratio = 100. * trainable / total if total else 0.
    return (format_table(
        ('component', 'trainable', 'frozen', 'total'), rows, align_right=False)
            +
            f'\n\ntrainable ratio: {trainable:,} / {total:,} = {ratio:.3f} %')
