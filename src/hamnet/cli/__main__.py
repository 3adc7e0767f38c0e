"""``python -m hamnet.cli``: the same as the ``hamnet`` console script."""

import sys

from hamnet.cli import main

sys.exit(main())
