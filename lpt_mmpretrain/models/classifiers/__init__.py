from .lpt_classifier import *  # noqa: F401,F403
from .model_index_mixin import *  # noqa: F401,F403
