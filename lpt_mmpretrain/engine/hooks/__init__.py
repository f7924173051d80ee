from .class_counts_hook import *  # noqa: F401,F403
from .dual_stream_schedule_hook import *  # noqa: F401,F403
from .iter_seed_hook import *  # noqa: F401,F403
from .preemption_checkpoint_hook import *  # noqa: F401,F403
from .prompt_checkpoint_hook import *  # noqa: F401,F403
