from typing import Callable, Optional

__all__ = ['ModelIndexMixin']


class ModelIndexMixin:
    """Make ``mmpretrain.inference_model(model, img)`` find an inferencer.

    ``mmpretrain.get_model(config)`` sets ``model._metainfo = None`` when it
    is given a config instead of a model name, and ``inference_model`` then
    raises "No available inferencer for the model": it picks the inferencer
    from ``model._metainfo.results[*].task``. Classifiers that inherit this
    mixin (before ``ImageClassifier``) answer ``_metainfo`` with
    ``find_metainfo(model._config.filename)`` (``get_model`` also sets
    ``_config``). A metainfo set explicitly (a model got by name) is kept.

    The model index lives above the models: ``lpt_mmpretrain.apis`` sets
    :attr:`find_metainfo` to its ``metainfo_of_config`` on import (which
    ``import lpt_mmpretrain`` does), so this floor imports nothing of it.
    """

    #: ``filename -> metainfo``; set by ``lpt_mmpretrain.apis``.
    find_metainfo: Optional[Callable[[Optional[str]], object]] = None

    @property
    def _metainfo(self):
        metainfo = self.__dict__.get('_lpt_metainfo')
        if metainfo is not None or ModelIndexMixin.find_metainfo is None:
            return metainfo
        config = self.__dict__.get('_config')
        return ModelIndexMixin.find_metainfo(getattr(config, 'filename', None))

    @_metainfo.setter
    def _metainfo(self, value) -> None:
        self.__dict__['_lpt_metainfo'] = value
