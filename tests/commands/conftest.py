"""Fixtures of the command tests: the helpers of the service tests (tests/service) are shared.

(Test folders are not packages, so the folder of service_support.py is put on the path.)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
