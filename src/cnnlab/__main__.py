"""``python -m cnnlab``: the command line, as torchrun starts it (``torchrun ... -m cnnlab train RECIPE``)."""

import sys

from cnnlab.cli.main import main

sys.exit(main())
