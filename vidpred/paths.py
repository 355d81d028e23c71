"""Where vidpred's own files are: the shipped weights and the state folder."""

from __future__ import annotations

import os
from pathlib import Path

# weights/ sits beside the package folder in the repo, so an editable install
# (`pip install -e .`) finds it from any working directory.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "default.pt"

# The files vidpred ships in its own weights/ folder. No command ever writes them: they are
# what every user without a trained model renders with. (Other files in that folder are the
# user's: `vidpred train` run from the repo root writes weights/<folder>.pt there.)
SHIPPED_FOLDER = DEFAULT_WEIGHTS.parent
SHIPPED_FILES = (DEFAULT_WEIGHTS.name, DEFAULT_WEIGHTS.with_suffix(".jsonl").name, "README.md")


def state_dir() -> Path:
    """Returns the folder for vidpred's small state files ($VIDPRED_HOME, else XDG state)."""
    if os.environ.get("VIDPRED_HOME"):
        return Path(os.environ["VIDPRED_HOME"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "vidpred"
