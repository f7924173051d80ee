"""Importing this module applies :func:`lpt_mmpretrain.engine.compat.install`.

For configs, whose ``custom_imports`` are the one hook that MMPretrain's own
tools, ``get_model`` and ``ImageClassificationInferencer`` run::

    custom_imports = dict(
        imports=['lpt_mmpretrain', 'lpt_mmpretrain.engine.compat.installed'])

(``configs/_base_/default_runtime.py`` does this.) It also applies
:func:`~.visualization.install_tool_fixes` (MMPretrain's packaged
``browse_dataset.py`` / ``vis_tsne.py`` on today's matplotlib and
scikit-learn).
"""
from . import install
from .visualization import install_tool_fixes

install()
install_tool_fixes()
