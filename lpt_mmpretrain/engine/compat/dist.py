"""CPU (gloo) support for MMEngine's distributed launchers.

MMEngine 0.10.7 assumes a GPU whenever ``launcher != 'none'``:
``init_dist`` calls ``torch.cuda.set_device(local_rank)`` for the ``pytorch``,
``slurm`` and ``mpi`` launchers, and ``Runner.wrap_model`` builds
``MMDistributedDataParallel`` with ``device_ids=[LOCAL_RANK]``. Both fail on a
machine without an accelerator. :func:`setup_cpu_distributed`, called by
``tools/train.py`` and ``tools/test.py`` before the runner is built, does the
CPU part itself: it initialises the process group (so that
``Runner.setup_env`` finds ``is_distributed()`` true and skips ``init_dist``)
and sets ``cfg.model_wrapper_cfg`` so that DDP is built without device ids.
With an accelerator it does nothing and MMEngine's own path is used.
"""
import datetime
import logging
import os
import subprocess
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.device import (is_mlu_available, is_musa_available,
                             is_npu_available)
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

__all__ = ['has_accelerator', 'setup_cpu_distributed', 'teardown_distributed']

# torch.distributed's default rendezvous port, as in MMEngine.
_DEFAULT_MASTER_PORT = '29500'


def has_accelerator() -> bool:
    """Whether MMEngine's own distributed path can run on this machine.

    Returns:
        bool: True if a CUDA, NPU, MLU or MUSA device is available.
    """
    return (torch.cuda.is_available() or is_npu_available()
            or is_mlu_available() or is_musa_available())


def _require_env(names: Tuple[str, ...], launcher: str) -> Dict[str, str]:
    missing = [name for name in names if name not in os.environ]
    if missing:
        hint = {
            'pytorch': 'start the processes with `torchrun` (e.g. '
            '`bash tools/dist_train.sh CONFIG NUM_PROCS`)',
            'slurm': 'start the processes with `srun` (e.g. '
            '`bash tools/slurm_train.sh ...`)',
            'mpi': 'start the processes with `mpirun`',
        }[launcher]
        raise RuntimeError(
            f'--launcher {launcher} needs the environment variables '
            f'{missing}, which are not set: {hint}, or use --launcher none '
            'for a single process.')
    return {name: os.environ[name] for name in names}


def _rank_and_world_size(launcher: str,
                         port: Optional[int] = None) -> Tuple[int, int]:
    """Read the process' rank and the world size from the launcher's
    environment and export what ``init_method='env://'`` needs.

    Mirrors ``mmengine.dist.utils._init_dist_{pytorch,slurm,mpi}`` without
    their ``torch.cuda.set_device`` call.
    """
    if launcher == 'pytorch':
        env = _require_env(
            ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'), launcher)
        return int(env['RANK']), int(env['WORLD_SIZE'])

    if launcher == 'slurm':
        env = _require_env(('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
                           launcher)
        rank, world_size = int(env['SLURM_PROCID']), int(env['SLURM_NTASKS'])
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', _DEFAULT_MASTER_PORT)
        if 'MASTER_ADDR' not in os.environ:
            node_list = env['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
        os.environ['WORLD_SIZE'] = str(world_size)
        os.environ['RANK'] = str(rank)
        # Without GPUs there is no device to pick, so the process' rank on
        # its node is only informative.
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        return rank, world_size

    if launcher == 'mpi':
        env = _require_env(('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                            'OMPI_COMM_WORLD_LOCAL_RANK', 'MASTER_ADDR'),
                           launcher)
        rank = int(env['OMPI_COMM_WORLD_RANK'])
        world_size = int(env['OMPI_COMM_WORLD_SIZE'])
        os.environ.setdefault('MASTER_PORT', _DEFAULT_MASTER_PORT)
        os.environ['WORLD_SIZE'] = str(world_size)
        os.environ['RANK'] = str(rank)
        os.environ['LOCAL_RANK'] = env['OMPI_COMM_WORLD_LOCAL_RANK']
        return rank, world_size

    raise ValueError(f'Invalid launcher {launcher!r}: expected one of '
                     "'none', 'pytorch', 'slurm' or 'mpi'.")


def _init_cpu_process_group(cfg: Config, launcher: str) -> None:
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    # Same default backend as ``mmengine.dist.init_dist``.
    backend = dist_cfg.pop('backend', 'nccl')
    init_backend = dist_cfg.pop('init_backend', 'torch')
    port = dist_cfg.pop('port', None)
    if init_backend != 'torch':
        raise ValueError(
            f'env_cfg.dist_cfg.init_backend={init_backend!r} needs a GPU; '
            "on CPU use init_backend='torch' (the default).")
    if backend == 'nccl':
        print_log(
            "env_cfg.dist_cfg.backend is 'nccl' but no GPU is available: "
            "using the 'gloo' backend instead.",
            logger='current',
            level=logging.WARNING)
        backend = 'gloo'
    if dist_cfg.get('timeout') is not None:
        # MMEngine's configs give the timeout in seconds.
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])

    rank, world_size = _rank_and_world_size(launcher, port)
    torch_dist.init_process_group(
        backend=backend, rank=rank, world_size=world_size, **dist_cfg)
    # The dumped config then records the backend that was really used.
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict()
    cfg.env_cfg.dist_cfg.backend = backend


def _cpu_model_wrapper_cfg(cfg: Config) -> Optional[dict]:
    """The ``model_wrapper_cfg`` that builds DDP without device ids, or None
    when the configured wrapper is not a DDP (it then gets no device ids)."""
    # Resolved late so that the module stays importable without side effects.
    from mmpretrain.registry import MODEL_WRAPPERS

    given = cfg.get('model_wrapper_cfg')
    wrapper_cfg = dict(given) if given is not None else dict(
        # The keyword arguments ``Runner.wrap_model`` uses without a config.
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')

    wrapper_type = wrapper_cfg['type']
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if not (isinstance(wrapper_type, type)
            and issubclass(wrapper_type, DistributedDataParallel)):
        return None
    device_ids = wrapper_cfg.setdefault('device_ids', None)
    if device_ids is not None:
        raise ValueError(
            f'model_wrapper_cfg.device_ids={device_ids} names GPU devices, '
            'but no GPU is available: remove `device_ids` from the config to '
            'run on CPU.')
    return wrapper_cfg


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Prepare a distributed run without an accelerator.

    Call it before building the runner. When ``launcher`` is not ``'none'``
    and no accelerator is available, it

    - initialises the default process group from the launcher's environment
      (``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` set by
      ``torchrun``; ``SLURM_*`` for ``srun``; ``OMPI_COMM_WORLD_*`` for
      ``mpirun``) with the backend of ``cfg.env_cfg.dist_cfg`` (``'nccl'``
      becomes ``'gloo'`` with a warning) and its other keyword arguments
      (e.g. ``timeout`` in seconds);
    - sets ``cfg.model_wrapper_cfg`` so that ``MMDistributedDataParallel``
      gets ``device_ids=None`` (keys already in ``cfg.model_wrapper_cfg`` are
      kept; without one, ``broadcast_buffers=False`` and
      ``find_unused_parameters=cfg.find_unused_parameters`` as in
      ``Runner.wrap_model``).

    With an accelerator, or with ``launcher='none'``, it does nothing: the
    runner follows MMEngine's own path.

    Args:
        cfg (Config): The full config; ``env_cfg.dist_cfg`` and
            ``model_wrapper_cfg`` are read and updated in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher not in ('none', 'pytorch', 'slurm', 'mpi'):
        raise ValueError(f'Invalid launcher {launcher!r}: expected one of '
                         "'none', 'pytorch', 'slurm' or 'mpi'.")
    if launcher == 'none' or has_accelerator():
        return
    if not torch_dist.is_available():
        raise RuntimeError(
            f'--launcher {launcher} needs torch.distributed, which this '
            'PyTorch build does not provide; use --launcher none.')
    # checked first, so that a bad config fails before any rendezvous
    wrapper_cfg = _cpu_model_wrapper_cfg(cfg)
    if not torch_dist.is_initialized():
        _init_cpu_process_group(cfg, launcher)
    if wrapper_cfg is not None:
        cfg.model_wrapper_cfg = wrapper_cfg


def teardown_distributed() -> None:
    """Wait for every rank, then destroy the default process group.

    Call it at the end of a successful distributed run. A process that exits
    with its process group still alive can be aborted while the interpreter
    shuts down (``terminate called without an active exception``, exit code
    -6 under ``torchrun``) because the backend's threads are still running;
    MMEngine's runner never destroys the group. Does nothing when no process
    group was initialised.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    # no rank may tear down while another still talks to it
    if torch_dist.get_backend() == 'nccl':
        # name the device: NCCL's barrier otherwise guesses it, and warns
        torch_dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        torch_dist.barrier()
    torch_dist.destroy_process_group()
