from .asymmetric_gcl_loss import *  # noqa: F401,F403
