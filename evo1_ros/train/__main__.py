"""`python -m evo1_ros.train …` (what `torchrun` / `accelerate launch` start): same as `evo1 train …`."""

import sys

from .cli import main

sys.exit(main())
