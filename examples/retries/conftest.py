"""Lets the tests import service.py and client.py from this directory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
