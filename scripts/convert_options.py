"""Write an option file of BasicSR, the published MCIR code, NAFNet or Restormer as an mcir option file.

``python scripts/convert_options.py IN.yml OUT.yml`` (same as the ``mcir-convert-options`` command).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli.convert_options import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
