from .prompt_pool_neck import *  # noqa: F401,F403
