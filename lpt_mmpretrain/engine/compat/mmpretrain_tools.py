"""Run MMPretrain's own ``tools/train.py`` / ``tools/test.py``, plus the
little they lack on this project's machines.

Our ``tools/train.py`` and ``tools/test.py`` take MMPretrain's argument
parsers and ``merge_args`` unchanged (from the copy MMPretrain ships in
``mmpretrain/.mim/tools/``, which ``mim train`` / ``mim test`` run), so every
option of theirs (``--tta``, ``--show-dir``, ``--auto-scale-lr``, ...)
behaves the same, and add only:

- ``launcher='pytorch' | 'slurm' | 'mpi'`` on a machine without GPU: a gloo
  process group and CPU DDP
  (:func:`~lpt_mmpretrain.engine.compat.dist.setup_cpu_distributed`);
- ``--amp`` without GPU: :class:`CPUAmpOptimWrapper` where MMEngine's
  ``AmpOptimWrapper`` cannot be built (:func:`amp_optim_wrapper_builds`);
- ``persistent_workers=False`` where ``num_workers=0`` and torch refuses the
  pair (:func:`persistent_workers_need_workers`; MMPretrain's ``train.py``
  always sets the former);
- the test metrics printed one ``name: value`` per line.
"""
import functools
import importlib.util
import os.path as osp
from types import ModuleType

import mmpretrain
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper
from torch.utils.data import DataLoader

__all__ = [
    'mmpretrain_tool_path', 'load_mmpretrain_tool', 'amp_optim_wrapper_builds',
    'persistent_workers_need_workers', 'adapt_cfg_to_host'
]

DATALOADER_FIELDS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def mmpretrain_tool_path(name: str) -> str:
    """Path of MMPretrain's ``tools/<name>.py`` (e.g. ``'train'``,
    ``'analysis_tools/get_flops'``): the copy packaged for ``mim``, else the
    one of a source tree."""
    root = osp.dirname(mmpretrain.__file__)
    candidates = [
        osp.join(root, '.mim', 'tools', f'{name}.py'),  # pip / mim install
        osp.join(osp.dirname(root), 'tools', f'{name}.py'),  # source tree
    ]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'MMPretrain {mmpretrain.__version__} ships no tools/{name}.py '
        f'(looked in {candidates}): reinstall it with `pip install '
        f'"mmpretrain>=1.2.0,<1.3.0"`.')


def load_mmpretrain_tool(name: str) -> ModuleType:
    """Import MMPretrain's ``tools/<name>.py`` as a module.

    Args:
        name (str): ``'train'`` or ``'test'``.

    Returns:
        ModuleType: The tool, whose ``parse_args`` and ``merge_args`` we use.
    """
    spec = importlib.util.spec_from_file_location(f'mmpretrain_tools_{name}',
                                                  mmpretrain_tool_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def amp_optim_wrapper_builds() -> bool:
    """Whether MMEngine's ``AmpOptimWrapper`` can be built on this machine
    (MMEngine 0.10.7 and OneDL's 0.10.12 assert a CUDA, NPU or MLU device).
    """
    param = torch.nn.Parameter(torch.zeros(1))
    try:
        AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=0.1))
    except (AssertionError, RuntimeError):
        return False
    return True


@functools.lru_cache(maxsize=None)
def persistent_workers_need_workers() -> bool:
    """Whether torch refuses ``persistent_workers=True`` with
    ``num_workers=0`` (torch 2.x raises ``ValueError``)."""
    try:
        DataLoader([0], num_workers=0, persistent_workers=True)
    except ValueError:
        return True
    return False


def adapt_cfg_to_host(cfg: Config) -> Config:
    """Apply the host fixes listed in the module docstring to ``cfg``."""
    wrapper = cfg.get('optim_wrapper')
    if wrapper is not None and wrapper.get('type') == 'AmpOptimWrapper' \
            and not amp_optim_wrapper_builds():
        # bf16 autocast on the CPU; MMEngine's wrapper needs a GPU.
        wrapper.type = 'CPUAmpOptimWrapper'
    for field in DATALOADER_FIELDS:
        loader = cfg.get(field)
        if loader is not None and loader.get('num_workers', 0) == 0 \
                and persistent_workers_need_workers():
            loader['persistent_workers'] = False
    return cfg
