from .lpt_vision_transformer import *  # noqa: F401,F403
