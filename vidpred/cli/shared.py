"""Options several commands share, and the helpers that turn them into library calls."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..errors import shown
from .console import stderr
from .validators import (
    clock_time,
    duration_time,
    non_negative_int,
    positive_int,
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help unless the help already says its default, or
    the default is None (the help then says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "(default" in help_text or action.default is None:
            return help_text
        return super()._get_help_string(action)


def add_cache_dir_option(p) -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="decode cache folder (default: $VIDPRED_CACHE, else ~/.cache/vidpred)",
    )


def add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decode cache")
    add_cache_dir_option(g)
    g.add_argument(
        "--no-cache", action="store_true", help="decode every video afresh; write no cache"
    )


def add_config_options(group, config_class, names: tuple[str, ...] | None = None) -> None:
    """Adds to ``group`` an option for each field of the config dataclass ``config_class``
    that is one (all, or those in ``names``), with the field's default, choices, help and
    bounds (vidpred.options): the option takes what the configuration and a stored
    checkpoint take."""
    from ..options import field_bounds, flag, is_option

    bounds = field_bounds(config_class)
    for field in dataclasses.fields(config_class):
        if not is_option(field) or (names is not None and field.name not in names):
            continue
        meta, kind = field.metadata, bounds[field.name].kind
        if kind == "bool":
            how = {"action": argparse.BooleanOptionalAction}
        elif kind == "choice":
            how = {"choices": meta["choices"]}
        else:
            how = {"type": _bounded(bounds[field.name])}
        if "metavar" in meta:
            how["metavar"] = meta["metavar"]
        group.add_argument(
            flag(field), dest=field.name, default=field.default, help=meta["help"], **how
        )


def _bounded(bounds):
    """Returns ``bounds.parse`` as an argparse type (argparse's own "invalid int value"
    names the type by its ``__name__``)."""

    def parse(text: str):
        return bounds.parse(text)

    parse.__name__ = "int" if bounds.kind == "int" else "float"
    return parse


def field_type(config_class, name: str):
    """Returns the argparse type of an option that sets ``config_class``'s field ``name``
    outside `train` (render's --size, generate's --seed): it takes what the field takes."""
    from ..options import field_bounds

    return _bounded(field_bounds(config_class)[name])


def working_size(text: str) -> int:
    """Reads --size as `train` stores it (DataConfig.size)."""
    from ..data import DataConfig

    return field_type(DataConfig, "size")(text)


def add_weights_option(p) -> None:
    """Adds --weights and --size: the model render and eval run, at its working size."""
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="checkpoint (default: newest trained, else shipped default)",
    )
    p.add_argument(
        "--size", type=working_size, default=None, help="working size (default: the checkpoint's)"
    )


def add_run_options(p) -> None:
    """Adds how render and eval run: device, precision, layout, batch and decode cache."""
    _add_device_options(p)
    p.add_argument(
        "--batch-size", type=positive_int, default=8, help="frames per model call (--adapt: 1)"
    )
    add_cache_options(p)


def add_resolution_options(p, default: str) -> None:
    """Adds --resolution, --max-side and --gate (render and eval)."""
    from ..gate import DEFAULT_GATE_WINDOW
    from ..native import DEFAULT_MAX_SIDE, RESOLUTIONS

    p.add_argument(
        "--resolution",
        choices=RESOLUTIONS,
        default=default,
        help="native: at the clip's own size (the model's motion applied to the full-size "
        "frames); working: at the model's working size",
    )
    p.add_argument(
        "--max-side",
        type=working_size,
        default=DEFAULT_MAX_SIDE,
        metavar="PX",
        help="at native resolution, shrink clips whose shorter side is larger to this",
    )
    p.add_argument(
        "--gate",
        type=non_negative_int,
        default=DEFAULT_GATE_WINDOW,
        metavar="FRAMES",
        help="show the flow baseline's prediction instead of the model's where the model "
        "trailed it over this many frames just before (a causal per-clip check; with "
        "--horizon N, over N-step predictions already scored); 0: always the model",
    )


def add_adapt_options(p) -> None:
    """Adds --adapt and --adapt-lr (render and eval): learning while watching."""
    from ..adapt import AdaptConfig

    p.add_argument(
        "--adapt",
        type=field_type(AdaptConfig, "steps_per_frame"),
        default=None,
        metavar="STEPS",
        help="learn while watching: after each frame it predicts (one per model call) the "
        "model takes STEPS training steps on the frames already shown, so a prediction of "
        "frame t uses weights trained only on frames before t (one-step predictions; eval: "
        "at the working size; each step costs about a training step's time); off by default",
    )
    p.add_argument(
        "--adapt-lr",
        type=field_type(AdaptConfig, "lr"),
        default=AdaptConfig.lr,
        metavar="LR",
        help="learning rate of --adapt",
    )


def adapt_config(args: argparse.Namespace):
    """Returns the ``vidpred.adapt.AdaptConfig`` of --adapt, or None without it."""
    from ..adapt import AdaptConfig

    if args.adapt is None:
        return None
    return AdaptConfig(steps_per_frame=args.adapt, lr=args.adapt_lr)


def add_segment_options(p, what: str) -> None:
    """Adds --start and --duration (render and eval)."""
    p.add_argument(
        "--start",
        type=clock_time,
        default=None,
        metavar="TIME",
        help=f"{what} from this time on (seconds, MM:SS or HH:MM:SS); the frames the first "
        "prediction needs are read from before it",
    )
    p.add_argument(
        "--duration",
        type=duration_time,
        default=None,
        metavar="TIME",
        help=f"{what} only this long (seconds, MM:SS or HH:MM:SS)",
    )


def _segment(args: argparse.Namespace):
    """Returns the vidpred.video.Segment of --start/--duration, or None without them."""
    from ..video import Segment

    if args.start is None and args.duration is None:
        return None
    return Segment(args.start or 0.0, args.duration)


def _add_device_options(p) -> None:
    """Adds --device and --precision, as `train` has them, and --layout."""
    from ..training import TrainConfig

    add_config_options(p, TrainConfig, names=("device", "precision"))
    add_layout_option(p)


def add_layout_option(p) -> None:
    from ..tuning import LAYOUTS

    p.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default="auto",
        help="memory layout of the model's activations; auto = what measured faster on "
        "this machine (once, vidpred.tuning)",
    )


def load_predictor(args: argparse.Namespace, quiet: bool):
    """Returns the predictor of --weights (or the default weights), in the arithmetic of
    --device, --precision and --layout, resolved once for the command; says which weights."""
    from ..precision import resolve_device
    from ..predict import Predictor
    from ..tuning import arithmetic_for
    from ..weights import resolve_weights

    path, why = resolve_weights(args.weights)
    device = resolve_device(args.device)
    arithmetic = arithmetic_for(device, args.precision, args.layout)
    predictor = Predictor.from_checkpoint(path, args.device, args.precision, arithmetic)
    if not quiet:
        stderr.print(f"weights: {shown(path)} ({why})", markup=False, highlight=False)
    return predictor


def video_options(args: argparse.Namespace):
    """Returns the options `render` and `eval` share (``vidpred.VideoOptions``)."""
    from ..video_options import VideoOptions

    return VideoOptions(
        size=args.size,
        resolution=args.resolution,
        max_side=args.max_side,
        batch_size=args.batch_size,
        cache=not args.no_cache,
        cache_dir=args.cache_dir,
        gate=args.gate,
        segment=_segment(args),
    )
