from .checkpoint import *  # noqa: F401,F403
from .dist import *  # noqa: F401,F403
from .prompt_checkpoint import *  # noqa: F401,F403
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
