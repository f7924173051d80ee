from .export import *  # noqa: F401,F403
from .inference import *  # noqa: F401,F403
from .model_index import *  # noqa: F401,F403
from .multi_task_inferencer import *  # noqa: F401,F403

# LPT models by name in mmpretrain.list_models / get_model / inference_model.
register_lpt_models()  # noqa: F405
