"""MMPretrain's packaged ``tools/visualization`` scripts against the
matplotlib and scikit-learn that install today.

- ``browse_dataset.py`` calls ``matplotlib._tight_bbox.adjust_bbox(fig,
  bbox)``; matplotlib >= 3.11 made ``renderer`` a required third argument
  (``TypeError: adjust_bbox() missing 1 required positional argument:
  'renderer'``). Where the probe finds it required, the function gets the
  default ``renderer=None`` (it is only passed to axes locators; the tool's
  figures have none). matplotlib's own callers always pass it.
- ``vis_tsne.py`` builds ``TSNE(n_iter=...)``; scikit-learn >= 1.7 renamed
  the argument ``max_iter`` (``TypeError: TSNE.__init__() got an unexpected
  keyword argument 'n_iter'``). Where ``TSNE`` has no ``n_iter``, its
  ``__init__`` maps ``n_iter`` to ``max_iter``.

Both patch the objects in place (the tools import them before they read a
config), and only where the probe finds the installed version needs it;
:func:`install_tool_fixes` applies them (``compat.installed`` calls it, so
configs' ``custom_imports`` do).
"""
import functools
import inspect
from typing import Tuple

__all__ = [
    'adjust_bbox_needs_renderer', 'tsne_lacks_n_iter', 'install_tool_fixes'
]


def _adjust_bbox():
    try:
        from matplotlib import _tight_bbox
    except ImportError:  # matplotlib < 3.6
        from matplotlib import tight_bbox as _tight_bbox
    return _tight_bbox.adjust_bbox


def adjust_bbox_needs_renderer() -> bool:
    """Whether matplotlib's ``adjust_bbox`` requires ``renderer``."""
    param = inspect.signature(_adjust_bbox()).parameters.get('renderer')
    return param is not None and param.default is inspect.Parameter.empty


def tsne_lacks_n_iter() -> bool:
    """Whether scikit-learn's ``TSNE`` refuses ``n_iter``."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return False
    params = inspect.signature(TSNE.__init__).parameters
    return 'n_iter' not in params and 'max_iter' in params


def _default_renderer() -> None:
    func = _adjust_bbox()
    names = list(inspect.signature(func).parameters)
    # defaults cover the trailing parameters: renderer, then the rest
    trailing = names[names.index('renderer'):]
    old = func.__defaults__ or ()
    func.__defaults__ = (None, ) * (len(trailing) - len(old)) + old


def _tsne_n_iter() -> None:
    from sklearn.manifold import TSNE
    init = TSNE.__init__

    @functools.wraps(init)  # keeps the signature sklearn's get_params reads
    def __init__(self, *args, n_iter=None, **kwargs):
        if n_iter is not None:
            kwargs.setdefault('max_iter', n_iter)
        init(self, *args, **kwargs)

    TSNE.__init__ = __init__


_applied = None


def install_tool_fixes() -> Tuple[str, ...]:
    """Apply the fixes the installed matplotlib / scikit-learn need, once.

    Returns:
        tuple[str]: Those applied: ``'adjust_bbox_renderer'``,
        ``'tsne_n_iter'``.
    """
    global _applied
    if _applied is None:
        applied = []
        if adjust_bbox_needs_renderer():
            _default_renderer()
            applied.append('adjust_bbox_renderer')
        if tsne_lacks_n_iter():
            _tsne_n_iter()
            applied.append('tsne_n_iter')
        _applied = tuple(applied)
    return _applied
