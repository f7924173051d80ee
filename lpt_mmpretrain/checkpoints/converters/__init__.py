"""Foreign checkpoint layouts -> ours: pure dict-to-dict functions, one
module per format, and the backbone's checkpoint filter."""
from .backbone import *  # noqa: F401,F403
from .clip import *  # noqa: F401,F403
from .official import *  # noqa: F401,F403
from .timm import *  # noqa: F401,F403
