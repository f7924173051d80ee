"""Safe checkpoint loading (``weights_only=True``) and the atomic backend.

:func:`install_safe_loading` (called by :func:`..install` where
:func:`mmengine_loads_safely` finds MMEngine's own loader lacking):

- allow-lists, for ``torch.load(weights_only=True)``, exactly the non-tensor
  types MMEngine writes into a training checkpoint (see
  :func:`register_safe_globals`), so ``--resume`` works under torch >= 2.6;
- replaces MMEngine's local-file checkpoint loader by
  :func:`load_from_safe_local`, which always loads with ``weights_only=True``
  and explains a refused file.

Importing this module registers the file backend ``'atomic_local'``
(:class:`AtomicLocalBackend`); configs select it for checkpoints with
``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``.
"""
import contextlib
import io
import os.path as osp
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader

from ...checkpoints.saving import atomic_open

__all__ = [
    'register_safe_globals', 'load_from_safe_local', 'mmengine_loads_safely',
    'install_safe_loading', 'AtomicLocalBackend'
]

# Statistics methods that ``HistoryBuffer.__getstate__`` pickles; MMEngine
# registers these four by default (HistoryBuffer._set_default_statistics).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """A ``getattr`` that only returns HistoryBuffer's statistics methods.

    ``HistoryBuffer`` pickles its statistics methods, which Python writes as
    ``builtins.getattr(HistoryBuffer, 'min')``. Allow-listing the real
    ``getattr`` would let a file reach any attribute of any allowed object
    (and from there arbitrary code), so this stand-in is registered under
    that name instead.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refused `getattr({obj!r}, {name!r})`: a checkpoint may only look '
        f'up the statistics methods {_HISTORY_BUFFER_METHODS} of '
        'mmengine.logging.history_buffer.HistoryBuffer.')


def _safe_globals() -> list:
    """The allow-list: what MMEngine 0.10.7 + MMPretrain 1.2.0 put into a
    training checkpoint besides tensors and plain Python containers."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return [
        # MessageHub.state_dict()['log_scalars']: HistoryBuffer objects that
        # hold numpy arrays and pickle their statistics methods.
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        # numpy arrays, scalars (e.g. runtime_info['eta'], metric values)
        # and the dtypes they carry.
        np.ndarray,
        np.dtype,
        np.dtypes.Float64DType,  # HistoryBuffer of float values
        np.dtypes.Int64DType,  # HistoryBuffer counts / int values
        # metric values may be numpy scalars of these types
        np.dtypes.Float32DType,
        np.dtypes.Int32DType,
        np.dtypes.BoolDType,
        # under the names numpy >= 2 and numpy 1.x write, so checkpoints from
        # either environment load
        (multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy._core.multiarray.scalar'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ]


def register_safe_globals() -> None:
    """Allow-list the non-tensor types of MMEngine training checkpoints for
    ``torch.load(weights_only=True)``.

    Never loads with ``weights_only=False``: a type outside this list is
    refused. Idempotent; called by :func:`install_safe_loading`.
    """
    torch.serialization.add_safe_globals(_safe_globals())


def _refused_name(message: str) -> str:
    """The global that ``torch.load(weights_only=True)`` refused, as far as
    its message names it."""
    for pattern in (r'GLOBAL (\S+) was not an allowed global',
                    r'GLOBAL (\S+) whose module', r"but got <class '([^']+)'>",
                    r'unrecognized function (.+?)(?: which belongs|\n|$)',
                    r'(Refused `getattr\(.*?\)`)'):
        match = re.search(pattern, message)
        if match:
            return match.group(1)
    return 'an object of a type that is not allow-listed'


def load_from_safe_local(filename: str,
                         map_location: Optional[Any] = None) -> Any:
    """Load a local checkpoint with ``torch.load(weights_only=True)``.

    Registered as MMEngine's loader for local paths (the ``''`` scheme of
    ``mmengine.runner.CheckpointLoader``), so ``load_from``, ``resume`` and
    ``load_checkpoint`` all use it.

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (optional): Same as in :func:`torch.load`.
            Defaults to None.

    Returns:
        The loaded checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        name = _refused_name(str(e))
        raise pickle.UnpicklingError(
            f'Refused to load the checkpoint {filename}: it holds a pickled '
            f'object that is not allow-listed ({name}), and loading it could '
            'run arbitrary code. If you made this file yourself and trust '
            'it, load it once with `torch.load(path, weights_only=False)` '
            "and re-save only its tensors (e.g. its 'state_dict'), or "
            'allow-list the type with '
            '`torch.serialization.add_safe_globals([...])`.\n'
            f'torch said: {e}') from e


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes are atomic.

    ``put`` and ``put_text`` write to a temporary file in the target's
    directory, flush and fsync it, then ``os.replace`` it onto the target, so
    an error while writing never leaves a truncated file in place of the last
    good one. Reading and everything else is :class:`LocalBackend`'s.

    Select it for checkpoints with
    ``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Atomically write bytes to ``filepath``.

        Args:
            obj (bytes): Data to be written.
            filepath (str or Path): Path to write data.
        """
        with atomic_open(filepath) as f:
            f.write(obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Atomically write text to ``filepath``.

        Args:
            obj (str): Text to be written.
            filepath (str or Path): Path to write data.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        self.put(obj.encode(encoding), filepath)


class _UnlistedProbe:
    """A type that no allow-list names: a safe loader refuses a file that
    holds one (see :func:`mmengine_loads_safely`)."""


def mmengine_loads_safely() -> bool:
    """Whether MMEngine's own loader for local checkpoint files is safe and
    reads MMEngine's training checkpoints.

    Probes ``mmengine.runner.checkpoint.load_from_local`` on two small files:
    one holding an object of a type nobody allow-listed (a safe loader
    refuses it; OneDL's mmengine 0.10.12 retries with ``weights_only=False``
    and returns it), and one holding what MMEngine's runner saves besides
    tensors (a ``HistoryBuffer`` of numpy values; MMEngine 0.10.7 under torch
    >= 2.6 refuses it, so ``--resume`` fails).

    Returns:
        bool: True if MMEngine refuses the first file and loads the second.
    """
    from mmengine.runner.checkpoint import load_from_local

    history = HistoryBuffer()
    history.update(np.float64(0.5))
    with tempfile.TemporaryDirectory() as tmp, \
            contextlib.redirect_stdout(io.StringIO()):  # a fallback's notice
        unlisted = osp.join(tmp, 'unlisted.pth')
        torch.save({'meta': _UnlistedProbe()}, unlisted)
        try:
            load_from_local(unlisted, map_location='cpu')
            return False  # it unpickled a type nobody allow-listed
        except pickle.UnpicklingError:
            pass
        training = osp.join(tmp, 'training.pth')
        torch.save({'message_hub': {
            'log_scalars': {
                'loss': history
            }
        }}, training)
        try:
            load_from_local(training, map_location='cpu')
        except pickle.UnpicklingError:
            return False
    return True


def install_safe_loading() -> None:
    """Make every MMEngine / MMPretrain loader in the process (runner
    ``load_from`` / ``--resume``, ``load_checkpoint``, ``get_model``) read
    local checkpoints with :func:`load_from_safe_local`, under the allow-list
    of :func:`register_safe_globals`. Idempotent."""
    register_safe_globals()
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_safe_local, force=True)
