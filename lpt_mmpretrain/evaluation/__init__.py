from .long_tail_accuracy import *  # noqa: F401,F403
from .shot_groups import *  # noqa: F401,F403
