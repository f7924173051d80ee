"""Export LPT models to ONNX: phase 1, and phase 2 with its top-k selection.

See ``docs/deployment.md`` for serving the file with ONNX Runtime.
"""
import copy
import os
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.registry import MODELS

__all__ = [
    'ScoresModel', 'loadable_model_cfg', 'build_model_from_checkpoint',
    'export_onnx',
    'onnx_scores', 'make_session', 'input_shape'
]


class ScoresModel(nn.Module):
    """An MMPretrain classifier as ``images -> scores``, for export.

    The scores are those of the classifier's ``predict``: the softmax of the
    head's logits, scaled by ``pred_scale`` for a :class:`CosineClsHead`.
    Phase 2 keeps its whole forward pass (query, top-k key selection, gather
    and average of the group prompts).

    Args:
        model (nn.Module): An ``ImageClassifier`` / ``LPTClassifier``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.scale = float(getattr(model.head, 'pred_scale', 1.))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, H, W) -> scores (B, num_classes)."""
        logits = self.model.head(self.model.extract_feat(inputs))
        return F.softmax(self.scale * logits, dim=-1)


def loadable_model_cfg(model_cfg: dict) -> dict:
    """A copy of a model config that builds without reading files.

    A phase-2 ``LPTClassifier`` needs no ``phase1_checkpoint`` when a file
    with everything phase 1 trained is loaded into it.
    """
    model_cfg = copy.deepcopy(dict(model_cfg))
    if model_cfg.get('type') == 'LPTClassifier' and model_cfg.get('neck'):
        model_cfg.update(phase1_checkpoint=None, allow_no_phase1=True)
    return model_cfg


def build_model_from_checkpoint(config: Union[str, Config],
                                checkpoint: str,
                                device: str = 'cpu',
                                cfg_options: Optional[dict] = None
                                ) -> nn.Module:
    """Build the model of ``config`` and load a full or prompt-only file.

    A prompt-only file takes the frozen backbone from the pretrained
    checkpoint of the config's ``init_cfg`` (or the one it records) and is
    refused if that backbone's fingerprint differs from the recorded one. A
    phase-2 model does not read ``phase1_checkpoint``: the file holds
    everything phase 1 trained.

    Args:
        config (str | Config): The model's config (a file, a ``Config`` or
            an LPT model name).
        checkpoint (str): A full or prompt-only checkpoint.
        device (str): Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides of the config
            (``--cfg-options``). Defaults to None.

    Returns:
        nn.Module: The model, in eval mode.
    """
    from .model_index import model_config
    config = model_config(config, cfg_options)
    model = MODELS.build(loadable_model_cfg(config.model))
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.to(device)
    model.eval()
    return model


def export_onnx(model: nn.Module,
                output_file: str,
                shape: Optional[Sequence[int]] = None,
                dynamic_batch: bool = False,
                opset_version: Optional[int] = None) -> str:
    """Export ``images -> scores`` of a classifier with ``torch.onnx``.

    The graph's input is ``input``, preprocessed images (B, 3, H, W) (the
    config's ``data_preprocessor`` normalisation applied, RGB); its output is
    ``scores``, (B, num_classes). The exporter is ``torch.onnx.export`` with
    ``dynamo=True`` (needs ``onnxscript``).

    Args:
        model (nn.Module): An ``ImageClassifier`` / ``LPTClassifier``.
        output_file (str): Where to write the ``.onnx`` file.
        shape (Sequence[int], optional): (H, W) of the input. Defaults to
            None: the backbone's ``img_size``.
        dynamic_batch (bool): Let the batch size vary. Defaults to False
            (batch 1).
        opset_version (int, optional): Defaults to None (the exporter's).

    Returns:
        str: ``output_file``.
    """
    shape = input_shape(model) if shape is None else tuple(shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f'shape must be (H, W), got {shape}.')
    in_channels = model.backbone.patch_embed.projection.in_channels
    wrapper = ScoresModel(model).eval()
    # Batch 2 when dynamic: the exporter specialises a dimension of size 1.
    dummy = torch.randn(2 if dynamic_batch else 1, in_channels, *shape,
                        device=next(model.parameters()).device)
    dynamic_shapes = ({
        'inputs': {
            0: torch.export.Dim('batch')
        }
    } if dynamic_batch else None)
    out_dir = osp.dirname(osp.abspath(output_file))
    os.makedirs(out_dir, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (dummy, ),
            output_file,
            input_names=['input'],
            output_names=['scores'],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset_version,
            dynamo=True)
    import onnx
    onnx.checker.check_model(output_file)
    return output_file


def onnx_scores(onnx_file: str, inputs: torch.Tensor,
                num_threads: Optional[int] = None) -> torch.Tensor:
    """Run an exported file with ONNX Runtime on the CPU.

    Args:
        onnx_file (str): The ``.onnx`` file of :func:`export_onnx`.
        inputs (torch.Tensor): Preprocessed images (B, 3, H, W).
        num_threads (int, optional): ONNX Runtime's intra-op threads.
            Defaults to None (its default).

    Returns:
        torch.Tensor: The scores (B, num_classes).
    """
    session = make_session(onnx_file, num_threads)
    (scores, ) = session.run(['scores'],
                             {'input': inputs.detach().cpu().numpy()})
    return torch.from_numpy(scores)


def make_session(onnx_file: str, num_threads: Optional[int] = None):
    """An ONNX Runtime CPU session for ``onnx_file``."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onnx_file, sess_options=options, providers=['CPUExecutionProvider'])


def input_shape(model: nn.Module) -> Tuple[int, int]:
    """The (H, W) the backbone was built for."""
    bb = model.backbone
    stride = bb.patch_embed.projection.stride
    return tuple(r * s for r, s in zip(bb.patch_resolution, stride))
