"""LPT models by name: the project's model index in MMPretrain's ModelHub.

``import lpt_mmpretrain`` calls :func:`register_lpt_models`, after which
MMPretrain's own APIs know the models of ``configs/lpt/metafile.yml``::

    >>> import lpt_mmpretrain
    >>> from mmpretrain import get_model, inference_model, list_models
    >>> list_models('lpt*')
    ['lpt_deit-base-p16_in1k-pre_places-lt-phase1', ...]
    >>> model = get_model('lpt_vit-tiny-p8_digits-pre_digits-lt-phase2',
    ...                   pretrained='work_dirs/phase2_digits/epoch_40.pth')
    >>> inference_model(model, 'digit.png')['pred_class']
"""
import argparse
import copy
import os.path as osp
from typing import List, Optional, Union

from mmengine.config import Config, DictAction
from mmpretrain.apis import ModelHub
from modelindex.models.Model import Model

from ..models.classifiers.model_index_mixin import ModelIndexMixin

__all__ = [
    'MODEL_INDEX', 'REPO_ROOT', 'ModelIndexMixin', 'lpt_model_names',
    'metainfo_of_config', 'register_lpt_models', 'model_config',
    'add_cfg_options'
]

# The index and the configs it names live in the repository (the project is
# installed with `pip install -e .`); config paths are relative to it.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO_ROOT, 'model-index.yml')

# What mmpretrain.inference_model reads to pick ImageClassificationInferencer.
TASK = 'Image Classification'

_registered: List[str] = []


def metainfo_of_config(filename: Optional[str]) -> Model:
    """The registered model-index entry whose ``Config`` is ``filename``.

    A config that no index lists (a user's own) gets an entry with only
    ``Task: Image Classification``: every LPT model is a classifier.

    Args:
        filename (str, optional): A config file path.

    Returns:
        modelindex.models.Model.Model: A copy of the entry.
    """
    if filename:
        path = osp.abspath(filename)
        for metainfo in ModelHub._models_dict.values():
            if metainfo.config == path:
                return copy.deepcopy(metainfo)
    return Model(
        name=None,
        results=[dict(task=TASK, dataset=None, metrics=None)],
        config=filename)


# LPTClassifier (ModelIndexMixin) answers `_metainfo` from this index.
ModelIndexMixin.find_metainfo = staticmethod(metainfo_of_config)


def register_lpt_models(model_index: str = MODEL_INDEX,
                        config_prefix: Optional[str] = None) -> List[str]:
    """Register a model index with MMPretrain's ``ModelHub`` (once).

    Args:
        model_index (str): A ``model-index.yml``. Defaults to the
            repository's.
        config_prefix (str, optional): What the ``Config`` paths of its
            metafiles are relative to. Defaults to the index's folder.

    Returns:
        list[str]: The (lower-case) names registered by the first call;
        later calls register nothing and return the same names.
    """
    if _registered:
        return list(_registered)
    if not osp.isfile(model_index):
        # An installation without the repository (a wheel) has no configs to
        # build models from, so there is nothing to register.
        return []
    if config_prefix is None:
        config_prefix = osp.dirname(osp.abspath(model_index))
    before = set(ModelHub._models_dict)
    ModelHub.register_model_index(model_index, config_prefix=config_prefix)
    _registered.extend(sorted(set(ModelHub._models_dict) - before))
    return list(_registered)


def lpt_model_names() -> List[str]:
    """The names :func:`register_lpt_models` registered."""
    return list(_registered)


def model_config(config: Union[str, Config],
                 cfg_options: Optional[dict] = None) -> Config:
    """A config from a file or an LPT model name, with overrides.

    Args:
        config (str | Config): A config file, a ``Config``, or a model name
            of ``mmpretrain.list_models('lpt*')``.
        cfg_options (dict, optional): ``--cfg-options`` (MMEngine's
            ``DictAction``) merged into it. Defaults to None.

    Returns:
        Config: A copy; ``config`` itself is not changed.
    """
    if isinstance(config, Config):
        cfg = Config(config.to_dict(), filename=config.filename)
    elif osp.isfile(config):
        cfg = Config.fromfile(config)
    else:
        from mmpretrain.apis import list_models
        if config.lower() not in list_models('lpt*'):
            raise FileNotFoundError(
                f'{config} is neither a config file nor an LPT model name '
                "(mmpretrain.list_models('lpt*')).")
        cfg = ModelHub.get(config).config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def add_cfg_options(parser: argparse.ArgumentParser,
                    what: str = 'the config') -> None:
    """``--cfg-options key=value ...`` as in MMPretrain's tools (MMEngine's
    ``DictAction``), for :func:`model_config`."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override settings of {what}, key=value (e.g. '
        'model.backbone.init_cfg.checkpoint=vit.pth)')
