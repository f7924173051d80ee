"""Export LPT models to ONNX: phase 1, and phase 2 with its top-k selection.

See ``docs/deployment.md`` for serving the file with ONNX Runtime.
"""
import copy
import inspect
import os
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.registry import MODELS

from .model_index import add_cfg_options, model_config
from .multi_task_model import MultiTaskModel

__all__ = [
    'ScoresModel', 'loadable_model_cfg', 'build_model_from_checkpoint',
    'export_onnx', 'onnx_scores', 'make_session', 'input_shape',
    'MultiTaskScores', 'export_multitask_onnx', 'onnx_multitask_scores',
    'add_export_arguments'
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
    config = model_config(config, cfg_options)
    model = MODELS.build(loadable_model_cfg(config.model))
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.to(device)
    model.eval()
    return model


class MultiTaskScores(nn.Module):
    """A :class:`MultiTaskInferencer`'s model as ``(images, task_ids) ->
    (scores, num_classes)``, for export.

    Every sample takes the phase-2 pass (masked for phase-1 tasks), so no
    shape depends on the data; the scores equal the inferencer's.

    Args:
        inferencer (MultiTaskInferencer): Its tasks, in ``task_names``
            order, are the task ids 0, 1, ...
    """

    def __init__(self, inferencer) -> None:
        super().__init__()
        self.model = MultiTaskModel(
            inferencer.model.backbone, inferencer.stack, static=True)

    def forward(self, inputs: torch.Tensor,
                task_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) images, (B,) int64 task ids -> (B, M) scores (0
        beyond a task's classes) and the (B,) class count of each."""
        return (self.model(inputs,
                           task_ids), self.model.stack.num_classes[task_ids])


def _export(wrapper: nn.Module, args: tuple, output_file: str,
            input_names: Sequence[str], output_names: Sequence[str],
            dynamic_batch: bool, opset_version: Optional[int]) -> str:
    """``torch.onnx.export(dynamo=True)`` with an optional batch dim, then
    ONNX's checker."""
    batch = torch.export.Dim('batch') if dynamic_batch else None
    names = list(inspect.signature(wrapper.forward).parameters)
    dynamic_shapes = ({
        name: {
            0: batch
        }
        for name in names
    } if dynamic_batch else None)
    os.makedirs(osp.dirname(osp.abspath(output_file)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            wrapper.eval(),
            args,
            output_file,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic_shapes,
            opset_version=opset_version,
            dynamo=True)
    import onnx
    onnx.checker.check_model(output_file)
    return output_file


def export_multitask_onnx(inferencer,
                          output_file: str,
                          shape: Optional[Sequence[int]] = None,
                          dynamic_batch: bool = True,
                          opset_version: Optional[int] = None) -> str:
    """Export all tasks of a :class:`MultiTaskInferencer` as one graph.

    Inputs ``input`` (B, 3, H, W), preprocessed images, and ``task_ids``
    (B,) int64, each image's task (its index in ``inferencer.task_names``);
    outputs ``scores`` (B, M), M the largest class count (0 beyond a task's
    classes), and ``num_classes`` (B,). The graph holds the backbone once
    and the stacked task tensors.

    Args:
        inferencer (MultiTaskInferencer): With at least one task.
        output_file (str): Where to write the ``.onnx`` file.
        shape (Sequence[int], optional): (H, W). Defaults to None: the
            backbone's ``img_size``.
        dynamic_batch (bool): Let the batch size vary. Defaults to True.
        opset_version (int, optional): Defaults to None (the exporter's).

    Returns:
        str: ``output_file``.
    """
    if not inferencer.task_names:
        raise ValueError('The inferencer has no task to export: add_task() '
                         'first.')
    backbone = inferencer.backbone
    shape = input_shape(inferencer) if shape is None else tuple(shape)
    in_channels = backbone.patch_embed.projection.in_channels
    batch = max(2, len(inferencer.task_names)) if dynamic_batch else 1
    inputs = torch.randn(batch, in_channels, *shape, device=inferencer.device)
    task_ids = torch.arange(
        batch, device=inferencer.device) % len(inferencer.task_names)
    return _export(
        MultiTaskScores(inferencer), (inputs, task_ids), output_file,
        ['input', 'task_ids'], ['scores', 'num_classes'], dynamic_batch,
        opset_version)


def onnx_multitask_scores(onnx_file: str,
                          inputs: torch.Tensor,
                          task_ids: torch.Tensor,
                          num_threads: Optional[int] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`export_multitask_onnx`'s file with ONNX Runtime (CPU).

    Returns:
        tuple: ``scores`` (B, M) and ``num_classes`` (B,).
    """
    session = make_session(onnx_file, num_threads)
    scores, num_classes = session.run(
        ['scores', 'num_classes'], {
            'input': inputs.detach().cpu().numpy(),
            'task_ids': task_ids.detach().cpu().long().numpy()
        })
    return torch.from_numpy(scores), torch.from_numpy(num_classes)


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
    # Batch 2 when dynamic: the exporter specialises a dimension of size 1.
    dummy = torch.randn(
        2 if dynamic_batch else 1,
        in_channels,
        *shape,
        device=next(model.parameters()).device)
    return _export(
        ScoresModel(model), (dummy, ), output_file, ['input'], ['scores'],
        dynamic_batch, opset_version)


def onnx_scores(onnx_file: str,
                inputs: torch.Tensor,
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


def add_export_arguments(parser) -> None:
    """The export tools' ``--output-file``, ``--shape``, ``--opset-version``
    and ``--cfg-options``."""
    parser.add_argument(
        '--output-file', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size (default: the backbone img_size)')
    parser.add_argument('--opset-version', type=int, help='ONNX opset')
    add_cfg_options(parser)
