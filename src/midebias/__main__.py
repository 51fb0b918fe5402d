"""`python -m midebias ...`: the command line (also what `torchrun -m midebias` starts)."""

import sys

from midebias.cli import main

sys.exit(main())
