"""``python -m vidhub``."""

import sys

from vidhub.cli import main

sys.exit(main())
