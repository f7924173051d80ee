"""Workarounds for the OpenMMLab stacks this project runs on (MMEngine
0.10.7 / MMPretrain 1.2.0, or OneDL's mmengine 0.10.12 / mmpretrain 1.3.6)
under torch >= 2.6, on machines with or without a GPU.

Nothing here is LPT: these are the generic fixes the project needs, kept
apart so that the method's code (models, datasets, the LPT hooks) stands
out. Nothing is patched on ``import lpt_mmpretrain``; each fix is applied
only where a probe of the installed stack finds it needed:

- :func:`install` (our tools call it first; configs import
  :mod:`.installed`, which calls it, so that MMPretrain's own tools,
  ``get_model`` and ``ImageClassificationInferencer`` get it too): where
  :func:`~.checkpoint.mmengine_loads_safely` finds MMEngine's local loader
  unsafe or unable to read its own training checkpoints, MMEngine's loader
  is replaced process-wide by one that always loads with
  ``weights_only=True`` under an exact allow-list
  (:func:`~.checkpoint.install_safe_loading`).
- :mod:`.mmpretrain_tools`: MMPretrain's own ``tools/train.py`` /
  ``test.py`` argument handling for our tools, and
  :func:`~.mmpretrain_tools.adapt_cfg_to_host` (``CPUAmpOptimWrapper`` where
  MMEngine's ``AmpOptimWrapper`` cannot be built, ``persistent_workers``
  off where torch refuses it without workers).
- :mod:`.visualization`: MMPretrain's packaged ``browse_dataset.py`` and
  ``vis_tsne.py`` on matplotlib >= 3.11 / scikit-learn >= 1.7
  (:func:`~.visualization.install_tool_fixes`, applied by
  :mod:`.installed`).
- :mod:`.dist`: ``launcher='pytorch' | 'slurm' | 'mpi'`` on machines without
  an accelerator (gloo process group, CPU DDP); MMEngine's path calls CUDA.

Registered components, found by configs after ``import lpt_mmpretrain``:
the ``atomic_local`` file backend (:class:`~.checkpoint.AtomicLocalBackend`)
and ``CPUAmpOptimWrapper`` (:mod:`.optimizers`).
"""
from typing import Optional, Tuple

from . import checkpoint, dist, mmpretrain_tools, visualization
from .checkpoint import *  # noqa: F401,F403
from .checkpoint import install_safe_loading, mmengine_loads_safely
from .dist import *  # noqa: F401,F403
from .mmpretrain_tools import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .optimizers import cpu_amp_optimizer_wrapper
from .visualization import *  # noqa: F401,F403

__all__ = ['install'] + [
    name for module in (checkpoint, dist, mmpretrain_tools, visualization,
                        cpu_amp_optimizer_wrapper) for name in module.__all__
]

_installed: Optional[Tuple[str, ...]] = None


def install() -> Tuple[str, ...]:
    """Apply the process-wide workarounds the installed MMEngine needs.

    Probes once per process; later calls return the first call's answer.

    Returns:
        tuple[str]: The workarounds applied (``('safe_loading',)`` on both
        tested stacks), empty where MMEngine needs none.
    """
    global _installed
    if _installed is None:
        applied = []
        if not mmengine_loads_safely():
            install_safe_loading()
            applied.append('safe_loading')
        _installed = tuple(applied)
    return _installed
