"""``python -m watcher`` runs the command line."""

import sys

from watcher.cli import main

sys.exit(main())
