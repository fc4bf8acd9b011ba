import sys

from swarmstream.streams.console.app import main

sys.exit(main())
