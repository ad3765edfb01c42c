"""`python -m bench` is `allocstudy`."""

import sys

from bench.cli import main

sys.exit(main())
