"""Test session setup."""

import os

# LightGBM's OpenMP threads spin while waiting by default; on a 2-core machine shared with other work
# that slows every small fit many times over. Set before lightgbm is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
