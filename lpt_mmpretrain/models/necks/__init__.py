from .clip_projection_neck import *  # noqa: F401,F403
from .prompt_pool_neck import *  # noqa: F401,F403
