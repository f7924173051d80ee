"""Long-tailed Prompt Tuning (LPT, ICLR 2023) for MMPretrain.

Importing this package registers every component into MMPretrain's
registries (``mmpretrain.registry.MODELS``, ``DATASETS``, ``DATA_SAMPLERS``,
``METRICS`` and ``HOOKS``), so configs reach them with
``custom_imports = dict(imports=['lpt_mmpretrain'])``, and registers the
project's model index (``model-index.yml``) with MMPretrain's ``ModelHub``,
so that ``mmpretrain.list_models('lpt*')`` and ``get_model(name)`` know the
LPT models. It patches nothing in MMEngine: the workarounds the installed
stack needs are applied by :func:`lpt_mmpretrain.engine.compat.install`,
which our tools call and the configs reach through ``custom_imports``
(``lpt_mmpretrain.engine.compat.installed``).
"""
import contextlib
import importlib.util
import io
import sys
import warnings


def _import_mmpretrain_quietly() -> None:
    """Import MMPretrain without the two messages it prints on every command
    on this project's set-ups (anything else it prints is passed on)."""
    if importlib.util.find_spec('mmcv._ext') is None:
        # mmcv-lite (and onedl-mmcv built without ops) has no compiled ops;
        # LPT needs none, and MMPretrain's import of
        # mmcv.cnn.bricks.transformer warns about one.
        warnings.filterwarnings(
            'ignore',
            message='Fail to import ``MultiScaleDeformableAttention``')
    if 'mmpretrain.datasets' in sys.modules:
        return
    # OneDL's mmpretrain prints this line (a DEBUG message that reaches
    # stdout) when the optional OneDL SDK is not installed.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        import mmpretrain.datasets  # noqa: F401
    sys.stdout.write(''.join(line for line in printed.getvalue().splitlines(
        keepends=True) if line.rstrip('\n') != 'Could not import OneDL'))


_import_mmpretrain_quietly()

# the standin:// scheme (checkpoints), the registries, the model index
from . import apis, checkpoints, datasets, engine, evaluation, models  # noqa
from .version import __version__  # noqa: E402

__all__ = ['__version__']
