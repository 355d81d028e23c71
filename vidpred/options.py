"""Configuration fields declared once.

Each field of the configuration dataclasses (``ModelConfig``, ``DataConfig``,
``TrainConfig``) says in its metadata whether `vidpred train` has an option for it, the
option's help and choices, and whether a resumed run may change it. The CLI builds its
options from these fields and the trainer derives its resume rule from them, so adding a
setting is one field with one help string.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    may_change_on_resume: bool = False,
) -> Any:
    """Returns a dataclass field that `vidpred train` also takes as ``--name-with-dashes``.

    Args:
        default: the field's default, which is also the option's.
        help: the option's help text.
        choices: the only values a text field may take.
        metavar: the placeholder for the option's value in the help (default: its name).
        may_change_on_resume: a resumed run may set another value (a stop limit, where it
            runs); otherwise it keeps its checkpoint's value, as an uninterrupted run would.
    """
    metadata = {"option": True, "help": help, "may_change_on_resume": may_change_on_resume}
    if choices is not None:
        metadata["choices"] = choices
    if metavar is not None:
        metadata["metavar"] = metavar
    return dataclasses.field(default=default, metadata=metadata)


def not_an_option(default: Any) -> Any:
    """Returns a dataclass field that no option sets: a fixed part of the method, kept on resume."""
    return dataclasses.field(default=default, metadata={"option": False})


def is_option(field: dataclasses.Field) -> bool:
    """Whether `vidpred train` has an option for ``field``."""
    return bool(field.metadata.get("option"))


def flag(field: dataclasses.Field) -> str:
    """Returns the command-line spelling of the option for ``field``: ``--val-fraction``."""
    return "--" + field.name.replace("_", "-")


def kept_on_resume(field: dataclasses.Field) -> bool:
    """Whether a resumed run must keep its checkpoint's value of ``field``."""
    return not field.metadata.get("may_change_on_resume", False)
