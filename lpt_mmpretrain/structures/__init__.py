from .dual_stream import *  # noqa: F401,F403
