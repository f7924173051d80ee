"""Atomic writes: a file is either the old one or the whole new one.

Every file this package writes (prompt-only files, converted checkpoints,
text embeddings) goes through :func:`atomic_torch_save`; MMEngine's
checkpoints through the ``'atomic_local'`` file backend
(:mod:`lpt_mmpretrain.engine.compat.checkpoint`), built on
:func:`atomic_open`.
"""
import contextlib
import os
import os.path as osp
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Union

import mmengine
import torch

__all__ = ['atomic_open', 'atomic_torch_save']


@contextlib.contextmanager
def atomic_open(filepath: Union[str, Path]) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``filepath`` for binary writing; on
    success it is flushed, synced to disk and moved onto ``filepath`` in one
    step, on any error it is removed and ``filepath`` is left untouched."""
    filepath = os.fspath(filepath)
    dirname = osp.dirname(osp.abspath(filepath))
    mmengine.mkdir_or_exist(dirname)
    tmp_path = osp.join(
        dirname,
        f'.{osp.basename(filepath)}.{os.getpid()}.{uuid.uuid4().hex}.tmp')
    # O_EXCL: never write into somebody else's file; mode 0o666 minus the
    # umask gives the permissions a plain open() would.
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise
    # Persist the rename itself (POSIX); not possible on every platform.
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(dirname, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_torch_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_open`).

    Args:
        obj: The object to save.
        path (str or Path): Destination file.
    """
    with atomic_open(path) as f:
        torch.save(obj, f)
