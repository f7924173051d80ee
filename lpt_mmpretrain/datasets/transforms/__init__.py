from .checked_loading import *  # noqa: F401,F403
from .five_crop import *  # noqa: F401,F403
