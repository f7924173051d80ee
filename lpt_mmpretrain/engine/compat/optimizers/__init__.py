from .cpu_amp_optimizer_wrapper import *  # noqa: F401,F403
