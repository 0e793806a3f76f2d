"""``python -m scorer``: the command line (``scorer/process/cli.py``)."""

import sys

from scorer.process.cli import main

sys.exit(main())
