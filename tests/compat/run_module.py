"""Run an installed module as ``python -m MODULE ARGS...`` after the torchvision shim (compat venvs).

LeRobot's CLI scripts import torchvision at module level; on a CPU-only torch the PyPI torchvision
wheel needs ``compat_common.install_torchvision_shim`` first, which ``python -m`` cannot do.

Usage: python tests/compat/run_module.py MODULE [ARGS...]
"""

from __future__ import annotations

import runpy
import sys

from compat_common import install_torchvision_shim

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    install_torchvision_shim()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
