"""Long-tailed Prompt Tuning (LPT, ICLR 2023) for MMPretrain.

Importing this package registers every component into MMPretrain's
registries (``mmpretrain.registry.MODELS``, ``DATASETS``, ``DATA_SAMPLERS``,
``METRICS`` and ``HOOKS``), so configs reach them with
``custom_imports = dict(imports=['lpt_mmpretrain'])``.
"""
from . import datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
