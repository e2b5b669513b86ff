"""`python -m bermo_hf` runs the `bermo` command."""

import sys

from bermo_hf.cli import main

sys.exit(main())
