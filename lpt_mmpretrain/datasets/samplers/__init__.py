from .dual_class_balanced_sampler import *  # noqa: F401,F403
