from .cosine_cls_head import *  # noqa: F401,F403
