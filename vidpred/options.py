"""Configuration fields declared once.

Each field of the configuration dataclasses (``ModelConfig``, ``DataConfig``,
``TrainConfig``) says in its metadata whether `vidpred train` has an option for it, the
option's help, the values it may take (``Bounds``), and whether a resumed run may change
it. From that one declaration come the option's argparse type, the configuration's own check
(``check_bounds``, in each ``__post_init__``) and the check of a stored checkpoint
(``field_bounds``), and the trainer's resume rule; adding a setting is one field.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from typing import Any

from .errors import SettingError

# The largest value of a counter (steps, epochs, batch): any real run fits, and nothing
# downstream overflows 64 bits or asks for an absurd allocation.
COUNT = 2**62


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The values one setting may take.

    ``kind`` and ``optional`` come from the field's type (``field_bounds``): "int", "real"
    (a finite number; an int counts), "bool" or "choice" (one of ``choices``); None is
    allowed only where the type says ``| None``. Numbers lie within [low, high], either end
    open where it says so, and integers are a multiple of ``multiple``.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    multiple: int = 1
    choices: tuple[str, ...] = ()
    unit: str = ""  # shown after a range: " px"
    kind: str = ""
    optional: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        low, high = self.low, self.high
        if low is not None and (value <= low if self.low_open else value < low):
            return False
        if high is not None and (value >= high if self.high_open else value > high):
            return False
        return self.kind != "int" or value % self.multiple == 0

    def describe(self) -> str:
        """Says what the setting takes, to follow "must be": "an integer from 1 to 1000"."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        integer = self.kind == "int"
        low, high = _shown(self.low), _shown(self.high)
        if self.high is None or self.high == COUNT:
            if self.low == 0 and not self.low_open:
                text = "0 or more"
            elif (self.low == 1 and integer) or (self.low == 0 and self.low_open):
                text = "a positive integer" if integer else "a positive number"
            else:
                text = f"{'an integer' if integer else 'a number'} >= {low}"
        elif self.low_open or self.high_open:
            opening, closing = "(["[not self.low_open], ")]"[not self.high_open]
            text = f"in {opening}{low}, {high}{closing}"
        else:
            text = f"{'an integer' if integer else 'a number'} from {low} to {high}"
        text += self.unit
        if self.multiple > 1:
            text += f" (a multiple of {self.multiple})"
        return text

    def parse(self, text: str) -> int | float:
        """Reads an option's text as this setting (the argparse type): raises argparse's
        type error saying, in one line, what it takes."""
        try:
            value = int(text) if self.kind == "int" else float(text)
        except ValueError:
            value = None
        if value is None or not self.accepts(value):
            shown = repr(text) if value is None else text
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {shown}")
        return value


def _shown(number: float | None) -> str:
    if number is None:
        return ""
    return "2^62" if number == COUNT else str(number) if isinstance(number, int) else f"{number:g}"


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    multiple: int = 1,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
    metavar: str | None = None,
    may_change_on_resume: bool = False,
) -> Any:
    """Returns a dataclass field that `vidpred train` also takes as ``--name-with-dashes``.

    Args:
        default: the field's default, which is also the option's.
        help: the option's help text.
        low, high, low_open, high_open, multiple, unit: the numbers it takes (``Bounds``).
        choices: the only values a text field may take.
        metavar: the placeholder for the option's value in the help (default: its name).
        may_change_on_resume: a resumed run may set another value (a stop limit, where it
            runs); otherwise it keeps its checkpoint's value, as an uninterrupted run would.
    """
    metadata = {
        "option": True,
        "help": help,
        "may_change_on_resume": may_change_on_resume,
        "bounds": Bounds(low, high, low_open, high_open, multiple, tuple(choices or ()), unit),
    }
    if choices is not None:
        metadata["choices"] = choices
    if metavar is not None:
        metadata["metavar"] = metavar
    return dataclasses.field(default=default, metadata=metadata)


def not_an_option(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """Returns a dataclass field that no option sets: a fixed part of the method, kept on
    resume, with the numbers a stored checkpoint may hold for it."""
    bounds = Bounds(low, high, low_open, high_open)
    return dataclasses.field(default=default, metadata={"option": False, "bounds": bounds})


@functools.cache
def field_bounds(config_class: type) -> dict[str, Bounds]:
    """Returns each field's ``Bounds``, its kind and whether it may be None read from the
    field's type annotation."""
    types = typing.get_type_hints(config_class)
    bounds = {}
    for field in dataclasses.fields(config_class):
        declared = field.metadata.get("bounds", Bounds())
        hint = types[field.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        kind = {bool: "bool", int: "int", float: "real", str: "choice"}[base]
        bounds[field.name] = dataclasses.replace(declared, kind=kind, optional=optional)
    return bounds


def check_bounds(config: Any) -> None:
    """Raises ValueError naming the first field of the configuration ``config`` outside its
    bounds: "width must be an integer from 1 to 4096, got 0"."""
    for name, bounds in field_bounds(type(config)).items():
        value = getattr(config, name)
        if not bounds.accepts(value):
            wanted = f"must be {bounds.describe()}, got {value!r}"
            raise SettingError(lambda n, field=name, wanted=wanted: f"{n(field)} {wanted}")


def is_option(field: dataclasses.Field) -> bool:
    """Whether `vidpred train` has an option for ``field``."""
    return bool(field.metadata.get("option"))


def flag(field: dataclasses.Field) -> str:
    """Returns the command-line spelling of the option for ``field``: ``--val-fraction``."""
    return "--" + field.name.replace("_", "-")


def kept_on_resume(field: dataclasses.Field) -> bool:
    """Whether a resumed run must keep its checkpoint's value of ``field``."""
    return not field.metadata.get("may_change_on_resume", False)
