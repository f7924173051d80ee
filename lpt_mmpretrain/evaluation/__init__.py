from .long_tail_accuracy import *  # noqa: F401,F403
