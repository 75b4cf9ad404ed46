"""``python -m bayeslm``: the command line."""

import sys

from bayeslm.cli import main

sys.exit(main())
