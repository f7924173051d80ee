from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """MMEngine's ``AmpOptimWrapper`` for training on CPU.

    MMEngine 0.10's ``AmpOptimWrapper`` refuses to start without a GPU (NPU,
    MLU, MUSA) and its ``autocast`` allows only bfloat16 on CPU. This wrapper
    is the same wrapper with those two device-specific parts replaced:
    ``torch.autocast('cpu', dtype)`` in :meth:`optim_context` and a
    ``torch.amp.GradScaler('cpu')`` as the loss scaler. Backward, step,
    gradient clipping and the state dict (with ``'loss_scaler'``) are
    ``AmpOptimWrapper``'s, so checkpoints move between the two wrappers.

    bfloat16 (the default) has float32's exponent range and needs no loss
    scaling; the scaler is kept, as MMEngine keeps it for bfloat16 on GPUs,
    and then never finds an overflow. float16 needs the dynamic scaling.

    On a machine whose MMEngine device is not the CPU, use
    ``AmpOptimWrapper``: the model is on that device and CPU autocast would
    not act on it.

    Args:
        loss_scale (float | str | dict): The loss scaler, as in
            ``AmpOptimWrapper``: ``'dynamic'``, a static scale (float), or
            the arguments of ``torch.amp.GradScaler`` (dict).
            Defaults to 'dynamic'.
        dtype (str | torch.dtype, optional): The autocast dtype,
            ``'bfloat16'`` or ``'float16'``. Defaults to None (bfloat16, the
            default of CPU autocast).
        **kwargs: Other arguments of ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    valid_dtypes = ('bfloat16', 'float16')

    def __init__(self,
                 loss_scale: Union[float, str, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 **kwargs) -> None:
        device = get_device()
        if device != 'cpu':
            raise RuntimeError(
                f'CPUAmpOptimWrapper trains on the CPU, but this machine '
                f"trains on '{device}': use optim_wrapper.type="
                "'AmpOptimWrapper' (what tools/train.py --amp sets).")
        if dtype is None:
            dtype = torch.bfloat16
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'CPUAmpOptimWrapper: dtype must be one of '
                                 f'{self.valid_dtypes}, got {dtype!r}.')
            dtype = getattr(torch, dtype)
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError('CPUAmpOptimWrapper: dtype must be '
                             f'torch.bfloat16 or torch.float16, got {dtype}.')
        # AmpOptimWrapper.__init__ asserts a GPU-like device; skip it and set
        # up what it would, with a CPU scaler.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise TypeError('loss_scale must be a float, a dict or "dynamic",'
                            f' got {loss_scale!r}.')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context plus CPU autocast.

        Args:
            model (nn.Module): The training model.
        """
        with OptimWrapper.optim_context(self, model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
