from .resumable_train_loop import *  # noqa: F401,F403
