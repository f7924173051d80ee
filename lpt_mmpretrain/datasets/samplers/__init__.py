from .dual_class_balanced_sampler import *  # noqa: F401,F403
from .dual_stream_batch_sampler import *  # noqa: F401,F403
