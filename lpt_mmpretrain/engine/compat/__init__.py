"""Workarounds for MMEngine 0.10.7 / MMPretrain 1.2.0 / torch >= 2.6.

Nothing here is LPT: these are the generic fixes the project needs on its
machines, kept apart so that the method's code (models, datasets, the LPT
hooks) stands out.

- :mod:`.checkpoint`: safe checkpoint loading and atomic saving. **Importing
  lpt_mmpretrain changes MMEngine process-wide**: it allow-lists, for
  ``torch.load(weights_only=True)``, exactly the non-tensor types MMEngine
  writes into training checkpoints, and replaces MMEngine's loader for local
  files (``CheckpointLoader``'s ``''`` prefix) by one that always loads with
  ``weights_only=True`` and explains a refused file. Every MMEngine /
  MMPretrain loader in the process (runner ``load_from`` / ``--resume``,
  ``load_checkpoint``, ``get_model``) then reads local checkpoints safely; a
  file holding any other pickled object is refused. It also registers the
  ``atomic_local`` file backend used for checkpoints.
- :mod:`.dist`: ``launcher='pytorch' | 'slurm' | 'mpi'`` on machines without
  a GPU (gloo process group, CPU DDP); MMEngine's path calls CUDA.
- :mod:`.optimizers`: ``CPUAmpOptimWrapper``, bf16 autocast on the CPU
  (MMEngine's ``AmpOptimWrapper`` needs a GPU).
- :mod:`.mmpretrain_tools`: MMPretrain's own ``tools/train.py`` /
  ``test.py`` argument handling, plus the above, for our tools.
"""
from .checkpoint import *  # noqa: F401,F403
from .dist import *  # noqa: F401,F403
from .mmpretrain_tools import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
