from .long_tail_mixin import *  # noqa: F401,F403
from .cifar100_lt import *  # noqa: F401,F403
from .split_file_dataset import *  # noqa: F401,F403
from .places_lt import *  # noqa: F401,F403
from .imagenet_lt import *  # noqa: F401,F403
from .inat2018 import *  # noqa: F401,F403
from .digits_lt import *  # noqa: F401,F403
from .samplers import *  # noqa: F401,F403
