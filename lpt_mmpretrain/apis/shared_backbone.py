"""One frozen LPT backbone shared by many tasks: where it comes from, and
the tasks' own models on it.

:func:`resolve_backbone` accepts what MMPretrain's inferencers accept as
``model=`` (a module, a config, a config file, a model name, a checkpoint)
and returns the loaded :class:`LPTVisionTransformer`; :func:`prompted_view`
gives a task its own backbone module, with its own prompt, on the shared
frozen weights, so that :func:`load_task_model` builds and loads the task's
model the normal way.
"""
import copy
import json
import os.path as osp
import weakref
from collections import OrderedDict
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)
from mmpretrain.registry import MODELS

from ..checkpoints import (is_prompt_checkpoint, recorded_fingerprint,
                           recorded_source)
from .export import loadable_model_cfg

__all__ = [
    'resolve_backbone',
    'prompted_view',
    'bare_view',
    'load_task_model',
]

ACCEPTED = ('an LPTVisionTransformer module, a backbone config dict, a '
            'config file (.py, its model.backbone), an LPT model name '
            "(mmpretrain.list_models('lpt*')) or a checkpoint file (a full "
            "LPT checkpoint, or the backbone's pretrained ViT file)")


def _is_lpt_backbone(module) -> bool:
    return all(
        hasattr(module, name)
        for name in ('embed', 'forward_blocks', 'forward_final', 'num_layers'))


def _build_loaded(cfg: dict, checkpoint: Optional[str] = None) -> nn.Module:
    """Build a backbone config and load its (or ``checkpoint``'s) weights."""
    cfg = copy.deepcopy(dict(cfg))
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    return backbone


def _task_backbone_cfg(task_file: Optional[str]) -> Optional[dict]:
    if task_file is None:
        return None
    meta = _load_checkpoint(task_file, map_location='cpu').get('meta') or {}
    return ((meta.get('model') or {}).get('backbone'))


def resolve_backbone(backbone: Union[nn.Module, dict, str],
                     task_file: Optional[str] = None) -> nn.Module:
    """The frozen backbone from any of the accepted forms.

    Args:
        backbone: An :class:`LPTVisionTransformer` (kept as it is), a
            backbone config (built; ``init_weights()`` loads its
            ``Pretrained`` checkpoint), a config file (its
            ``model.backbone``), an LPT model name of the model index, or a
            checkpoint: a full LPT checkpoint (its backbone weights) or the
            backbone's pretrained file. A checkpoint names no architecture:
            it is taken from the config the checkpoint records (MMEngine's
            ``meta['cfg']``), else from ``task_file``'s recorded model.
        task_file (str, optional): A prompt-only file, for the architecture
            of a checkpoint. Defaults to None.

    Returns:
        nn.Module: The backbone with its frozen weights loaded.
    """
    if isinstance(backbone, nn.Module):
        if not _is_lpt_backbone(backbone):
            raise TypeError(f'backbone is a {type(backbone).__name__}; it '
                            f'must be {ACCEPTED}.')
        return backbone
    if isinstance(backbone, dict):
        return _build_loaded(backbone)
    if not isinstance(backbone, str):
        raise TypeError(f'backbone must be {ACCEPTED}; got '
                        f'{type(backbone).__name__}.')
    if backbone.endswith('.py'):
        if not osp.isfile(backbone):
            raise FileNotFoundError(f'Config file {backbone} does not exist.')
        return _build_loaded(Config.fromfile(backbone).model.backbone)
    if not osp.isfile(backbone) and '://' not in backbone:
        from mmpretrain.apis import ModelHub, list_models
        if backbone.lower() in list_models('lpt*'):
            return _build_loaded(ModelHub.get(backbone).config.model.backbone)
        raise ValueError(f'backbone={backbone!r} is neither a file nor an LPT '
                         f'model name; it must be {ACCEPTED}.')
    ckpt = _load_checkpoint(backbone, map_location='cpu')
    if is_prompt_checkpoint(ckpt):
        raise ValueError(
            f'{backbone} is a prompt-only file (a task): it holds no backbone '
            'weights. Pass it in tasks=, and as backbone the pretrained ViT '
            f'it records, or {ACCEPTED}.')
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    cfg_text = (meta or {}).get('cfg')
    cfg = (
        Config.fromstring(cfg_text, '.py').model.backbone if isinstance(
            cfg_text, str) else _task_backbone_cfg(task_file))
    if cfg is None:
        raise ValueError(
            f'{backbone} records no config, so its architecture is unknown: '
            'give a task (its prompt-only file records the model), or pass '
            'the backbone config / config file instead.')
    # A full LPT checkpoint's own prompt loads (and is not used): give the
    # backbone its length.
    state = ckpt.get('state_dict', ckpt)
    prompt = state.get('backbone.prompt', state.get('prompt'))
    cfg = dict(cfg, prompt_length=0 if prompt is None else prompt.shape[1])
    return _build_loaded(cfg, checkpoint=backbone)


# Per shared backbone, per task backbone config (as JSON): the config's
# module, built once on the meta device, checked, holding the shared
# submodules and frozen tensors. Each task's view is a shallow copy of it
# with a prompt of its own: no module is built or initialised per task.
_TEMPLATES: 'weakref.WeakKeyDictionary[nn.Module, Dict[str, nn.Module]]' = \
    weakref.WeakKeyDictionary()


def _view_template(backbone: nn.Module, cfg: dict) -> nn.Module:
    """The module of ``cfg`` on ``backbone``'s weights (its prompt, if any,
    on the meta device); see :func:`prompted_view`."""
    cfg = copy.deepcopy(dict(cfg))
    key = json.dumps(cfg, sort_keys=True, default=repr)
    templates = _TEMPLATES.setdefault(backbone, {})
    if key in templates:
        return templates[key]
    cfg['init_cfg'] = None
    with torch.device('meta'):
        view = MODELS.build(cfg)
    own = {
        k: v.shape
        for k, v in backbone.state_dict().items() if k != 'prompt'
    }
    theirs = {
        k: v.shape
        for k, v in view.state_dict().items() if k != 'prompt'
    }
    if own != theirs:
        diff = sorted(set(own.items()) ^ set(theirs.items()), key=str)[:3]
        raise ValueError(
            'The task was trained on another architecture than the shared '
            f'backbone (differing tensors, name and shape: {diff}).')
    for name, module in backbone.named_children():
        setattr(view, name, module)
    for name, param in backbone.named_parameters(recurse=False):
        if name != 'prompt':
            setattr(view, name, param)
    for name, buf in backbone.named_buffers(recurse=False):
        setattr(view, name, buf)
    templates[key] = view
    return view


def prompted_view(backbone: nn.Module, cfg: dict) -> nn.Module:
    """A backbone module of config ``cfg`` on ``backbone``'s frozen weights.

    The module of ``cfg`` is built once per shared backbone and config, on
    the meta device (nothing allocated or initialised), and must have the
    shared backbone's architecture (every frozen tensor's name and shape).
    The view is a shallow copy of it: the shared backbone's submodules and
    frozen parameters, the settings of ``cfg``, and a prompt of its own
    (zeros, ``cfg['prompt_length']`` tokens, to be loaded). Its load hook is
    its own, so loading a prompt-only file into a model on the view runs
    the normal checks.

    Args:
        backbone (nn.Module): The shared, loaded backbone.
        cfg (dict): A task's backbone config.
    """
    template = _view_template(backbone, cfg)
    view = copy.copy(template)
    # own containers: setting the view's prompt leaves the template's alone
    view._parameters = dict(template._parameters)
    view._buffers = dict(template._buffers)
    view._modules = dict(template._modules)
    view._load_state_dict_pre_hooks = OrderedDict()
    view._register_load_hooks()  # bound to the view, not the template
    if template.prompt is not None:
        view.prompt = nn.Parameter(
            torch.zeros(
                template.prompt.shape, device=backbone.pos_embed.device),
            requires_grad=False)
    return view.eval()


def bare_view(backbone: nn.Module) -> nn.Module:
    """The backbone without its own prompt (tasks bring theirs): the same
    modules and frozen parameters, for the forward pass only (never
    loaded into)."""
    if getattr(backbone, 'prompt', None) is None:
        return backbone
    view = copy.copy(backbone)
    view._parameters = dict(backbone._parameters)
    view._buffers = dict(backbone._buffers)
    view._modules = dict(backbone._modules)
    view.register_parameter('prompt', None)
    view.prompt_length = 0
    return view


def load_task_model(backbone: nn.Module, filename: str,
                    fingerprint: str) -> Tuple[nn.Module, dict]:
    """A task's own model on the shared backbone, loaded from its file.

    The model is built from the config the prompt-only file records
    (``meta['model']``) on :func:`prompted_view` of ``backbone``, and the
    file goes through ``load_state_dict``: the classifier's load hook checks
    every trained tensor, the backbone's sees its own fingerprint and keeps
    its weights. A file trained on another backbone is refused before, so
    the shared backbone is never reloaded.

    Args:
        backbone (nn.Module): The shared, loaded backbone.
        filename (str): The task's prompt-only file.
        fingerprint (str): ``backbone_fingerprint(backbone)``.

    Returns:
        tuple: The model (eval mode, on the backbone's device) and the
        file's ``meta``.
    """
    ckpt = _load_checkpoint(filename, map_location='cpu')
    if not is_prompt_checkpoint(ckpt):
        raise ValueError(
            f'{filename} is not a prompt-only checkpoint: a task is the '
            '`*_prompts.pth` file written next to the full checkpoint '
            '(PromptCheckpointHook), or save_prompt_checkpoint(model, '
            'file, meta).')
    meta = ckpt['meta']
    model_cfg = meta.get('model')
    if not isinstance(model_cfg, dict) or 'head' not in model_cfg:
        raise ValueError(
            f'{filename} records no model config (meta["model"]) with a '
            'head: write it with PromptCheckpointHook, or pass '
            'meta=dict(model=cfg.model) to save_prompt_checkpoint.')
    if model_cfg.get('type') not in ('LPTClassifier', 'ImageClassifier'):
        raise ValueError(
            f'{filename} is a {model_cfg.get("type")}: a task is an LPT '
            'model (LPTClassifier, or an ImageClassifier with an '
            'LPTVisionTransformer).')
    recorded = recorded_fingerprint(ckpt)
    if recorded is None:
        raise ValueError(
            f'{filename} records no backbone fingerprint, so it cannot be '
            'checked against this backbone. Re-save it with a current '
            'PromptCheckpointHook / save_prompt_checkpoint (or '
            'tools/model_converters/extract_prompts.py).')
    if recorded != fingerprint:
        raise ValueError(
            f'{filename} was trained on another backbone: it records '
            f'backbone fingerprint {recorded} (checkpoint '
            f'{recorded_source(ckpt)}), this backbone has '
            f'{fingerprint}. Serve it with the backbone it was trained with.')
    model_cfg = loadable_model_cfg(model_cfg)
    try:
        model_cfg['backbone'] = prompted_view(backbone, model_cfg['backbone'])
    except ValueError as err:
        raise ValueError(f'{filename}: {err}') from None
    model = MODELS.build(model_cfg)
    _load_checkpoint_to_model(model, ckpt, strict=True)
    return model.to(backbone.pos_embed.device).eval(), meta
