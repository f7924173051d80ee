"""Long-tailed Prompt Tuning (LPT, ICLR 2023) for MMPretrain.

Importing this package registers every component into MMPretrain's
registries (``mmpretrain.registry.MODELS``, ``DATASETS``, ``DATA_SAMPLERS``,
``METRICS`` and ``HOOKS``), so configs reach them with
``custom_imports = dict(imports=['lpt_mmpretrain'])``, and registers the
project's model index (``model-index.yml``) with MMPretrain's ``ModelHub``,
so that ``mmpretrain.list_models('lpt*')`` and ``get_model(name)`` know the
LPT models.
"""
import warnings

# mmcv-lite has no compiled ops; LPT needs none, and MMPretrain's import of
# mmcv.cnn.bricks.transformer would warn about one on every command.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

# engine before models: checkpoints/ (under models) imports
# engine/compat/checkpoint.py, whose package engine/ imports hooks that import
# checkpoints/; starting from engine, checkpoints/ finds engine.compat loaded.
from . import datasets, engine, evaluation, models  # noqa: F401,E402
from . import checkpoints  # noqa: F401,E402  (the standin:// scheme)
from . import apis  # noqa: F401,E402  (after models: registers the model index)
from .version import __version__  # noqa: E402

__all__ = ['__version__']
