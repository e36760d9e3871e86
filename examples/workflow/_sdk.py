"""Makes `import artmesh` work in these examples when the SDK is not installed.

With `pip install ./sdk/python` (from the repository's root) this does
nothing; otherwise it puts the repository's sdk/python on sys.path, which
is what `PYTHONPATH=sdk/python` would do.
"""

import os
import sys

try:
    import artmesh  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
