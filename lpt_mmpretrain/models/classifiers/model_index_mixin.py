import copy
import os.path as osp
from typing import Optional

from mmpretrain.apis import ModelHub
from modelindex.models.Model import Model

__all__ = ['ModelIndexMixin', 'metainfo_of_config']

# What mmpretrain.inference_model reads to pick ImageClassificationInferencer.
TASK = 'Image Classification'


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
    return Model(name=None,
                 results=[dict(task=TASK, dataset=None, metrics=None)],
                 config=filename)


class ModelIndexMixin:
    """Make ``mmpretrain.inference_model(model, img)`` find an inferencer.

    ``mmpretrain.get_model(config)`` sets ``model._metainfo = None`` when it
    is given a config instead of a model name, and ``inference_model`` then
    raises "No available inferencer for the model": it picks the inferencer
    from ``model._metainfo.results[*].task``. Classifiers that inherit this
    mixin (before ``ImageClassifier``) answer ``_metainfo`` with the
    model-index entry of ``model._config`` (which ``get_model`` also sets),
    or an entry naming the task only. A metainfo set explicitly (a model got
    by name) is kept.
    """

    @property
    def _metainfo(self) -> Model:
        metainfo = self.__dict__.get('_lpt_metainfo')
        if metainfo is not None:
            return metainfo
        config = self.__dict__.get('_config')
        return metainfo_of_config(getattr(config, 'filename', None))

    @_metainfo.setter
    def _metainfo(self, value: Optional[Model]) -> None:
        self.__dict__['_lpt_metainfo'] = value
