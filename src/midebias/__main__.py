"""`python -m midebias ...`: the command line (also what `torchrun -m midebias` starts)."""

import os
import sys

from midebias.cli import main
from midebias.distributed import requested

code = main()
if requested():
    # One of several torchrun processes: its work is done and its files are written and
    # closed. Leave without the interpreter's finalisation, in which gloo's worker threads
    # (still holding tensors) can abort the process ("terminate called without an active
    # exception", SIGABRT) after a successful run, failing the whole launch.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
