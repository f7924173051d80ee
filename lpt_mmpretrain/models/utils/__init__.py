from .clip_convert import *  # noqa: F401,F403
from .official_convert import *  # noqa: F401,F403
from .timm_convert import *  # noqa: F401,F403
