"""``python -m swarmstream.streams.cli``: what the ``swarmstream`` script runs."""

import sys

from swarmstream.streams.cli.main import main

sys.exit(main())
