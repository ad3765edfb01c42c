"""`python -m bench` is `allocstudy` (the same entry point, bench.entry)."""

import sys

from bench.entry import main

sys.exit(main())
