"""Errors a user can cause. The CLI turns each into one line on stderr and a non-zero exit."""

import shlex


class VidpredError(Exception):
    """Base class: something the user can fix (a path, an option, a file)."""


class VideoError(VidpredError):
    """A video cannot be found, opened or decoded."""


class CheckpointError(VidpredError):
    """A weights file is missing, is not a vidpred checkpoint, or does not fit."""


class OutputError(VidpredError):
    """An output path cannot be written (exists without --force, missing folder, read-only)."""


class TrainingError(VidpredError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class TrainingInterrupted(VidpredError):
    """Training was stopped by SIGINT/SIGTERM after writing a resumable checkpoint."""

    def __init__(self, checkpoint, step: int):
        self.checkpoint = checkpoint
        self.step = step
        # Quoted so the command can be pasted as is, even with spaces in the path.
        super().__init__(
            f"interrupted at step {step}; checkpoint saved to {checkpoint}. "
            f"Continue with: vidpred train --resume {shlex.quote(str(checkpoint))}"
        )
