"""`vidpred train`: plans a new, resumed or fine-tuning run and calls the trainer."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from pathlib import Path

from ..errors import OutputError, SettingError, VidpredError, shown

if typing.TYPE_CHECKING:  # for annotations only
    from ..data import WindowDataset
    from ..runs import TrainRun
from .console import print_path, shell_word, stderr, stderr_progress
from .shared import HelpFormatter, add_cache_options, add_config_options, add_layout_option

# --period-frames/--trend-frames when only --period/--trend is given.
DEFAULT_BRANCH_FRAMES = 2


def add_train(sub) -> None:
    from ..data import DataConfig
    from ..model import ModelConfig
    from ..runs import DEFAULT_EPOCHS
    from ..training import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a next-frame model on a folder of videos",
        description="Train an ST-ResNet to predict the next frame of the videos in FOLDER "
        "(searched recursively). Stops at the first of --epochs/--steps/--time-limit "
        f"(default: {DEFAULT_EPOCHS} epochs).",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "folder", nargs="*", type=Path, help="video files or folders (optional with --resume)"
    )
    add_config_options(p.add_argument_group("data"), DataConfig)
    add_config_options(p.add_argument_group("model"), ModelConfig)
    g = p.add_argument_group("training")
    add_config_options(g, TrainConfig)
    add_layout_option(g)
    g.add_argument(
        "--compile", action="store_true", help="train through torch.compile (slow first steps)"
    )
    add_cache_options(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", type=Path, default=None, help="checkpoint path (default weights/<folder name>.pt)"
    )
    g.add_argument("--force", action="store_true", help="overwrite an existing --out")
    g.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue training from this checkpoint, with its settings",
    )
    g.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's model (its architecture and weights; "
        "fresh optimizer and schedule): fine-tuning; --base-flow may swap its start "
        "between dis and damped",
    )
    p.set_defaults(func=cmd_train)


def fill_new_run_defaults(args: argparse.Namespace) -> str | None:
    """Fills the defaults of `train` that depend on other options; returns the usage error
    of options that contradict each other, if any."""
    from ..data import default_crop
    from ..runs import DEFAULT_EPOCHS
    from ..video import working_size

    shorter = working_size(args.size, args.size, args.size)[0]  # every frame's, at --size
    if "crop" not in args.given:
        args.crop = default_crop(args.size)
    if args.crop > shorter:
        return (
            f"argument --crop: {args.crop} is larger than the frames' shorter side at "
            f"--size {args.size} ({shorter} px)"
        )
    for name in ("period", "trend"):
        spacing, frames = getattr(args, name), getattr(args, f"{name}_frames")
        if f"{name}_frames" not in args.given:
            setattr(args, f"{name}_frames", DEFAULT_BRANCH_FRAMES if spacing else 0)
        elif frames and not spacing:
            return f"argument --{name}-frames: needs --{name}"
        elif spacing and frames == 0:
            return f"argument --{name}-frames: must be positive with --{name}"
    if not args.given & {"epochs", "steps", "time_limit"}:
        args.epochs = DEFAULT_EPOCHS
    return None


def _config_from_args(config_class, args: argparse.Namespace, base=None):
    """Returns a ``config_class`` from the values of its options in ``args``; with ``base``,
    base's values with only the options the user gave replaced."""
    from ..options import is_option

    names = [f.name for f in dataclasses.fields(config_class) if is_option(f)]
    try:
        if base is None:
            return config_class(**{name: getattr(args, name) for name in names})
        return dataclasses.replace(base, **{n: getattr(args, n) for n in names if n in args.given})
    except SettingError:  # options that are each valid but not together: named as options
        raise
    except ValueError as e:
        raise VidpredError(str(e)) from e


def new_run_plan(args: argparse.Namespace) -> TrainRun:
    """Returns the plan of a new run, or one fine-tuning the model of --init."""
    from ..data import DataConfig
    from ..model import REFITTABLE, ModelConfig
    from ..options import is_option
    from ..runs import TrainRun
    from ..train_config import TrainConfig

    if not args.folder:
        raise VidpredError("name a folder of videos: vidpred train FOLDER")
    data_config = _config_from_args(DataConfig, args)
    config = _config_from_args(TrainConfig, args)
    out = args.out or _default_checkpoint_path(args.folder[0])
    if args.init:
        # The checkpoint's architecture is the model's; of its options only how it sees the
        # flow can change (vidpred.model.weights_for_inputs fits the weights to it).
        model_options = {f.name for f in dataclasses.fields(ModelConfig) if is_option(f)}
        if fixed := sorted((model_options - set(REFITTABLE)) & args.given):
            raise VidpredError(
                f"--init keeps the checkpoint's architecture: drop --{fixed[0].replace('_', '-')}"
            )
        refit = {name: getattr(args, name) for name in REFITTABLE if name in args.given}
        return TrainRun.init(args.init, args.folder, out, data_config, config, refit)
    return TrainRun.new(args.folder, out, _config_from_args(ModelConfig, args), data_config, config)


def _default_checkpoint_path(source: Path) -> Path:
    """Returns weights/<name of the first video or folder>.pt, making the folder."""
    source = source.resolve()
    out = Path("weights") / f"{source.stem if source.is_file() else source.name}.pt"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out.parent}: cannot create the folder ({e.strerror})") from e
    return out


def resumed_run_plan(args: argparse.Namespace) -> TrainRun:
    """Returns the plan of a run that continues the checkpoint of --resume, with its settings:
    options that would change one it keeps are refused (vidpred.runs.TrainRun.resume)."""
    from ..data import DataConfig
    from ..model import ModelConfig
    from ..runs import TrainRun
    from ..train_config import TrainConfig

    # The options as given, against the checkpoint's settings (the library's rules).
    fields = {
        f.name for cls in (ModelConfig, DataConfig, TrainConfig) for f in dataclasses.fields(cls)
    }
    given = {name: getattr(args, name) for name in args.given if name in fields}
    return TrainRun.resume(args.resume, given, sources=args.folder, out=args.out)


def _check_checkpoint_path(plan: TrainRun, force: bool) -> None:
    """Raises OutputError if the run may not write its checkpoint or log where it would."""
    from ..checkpoint import metrics_log_path
    from ..outputs import check_output_path
    from ..video import VIDEO_EXTENSIONS

    out, log = plan.out, metrics_log_path(plan.out)
    for path in (out, log):
        # A resumed run rewrites its own checkpoint and log: they may exist.
        check_output_path(path, force=force or plan.in_place, inputs=plan.inputs())
    if out.suffix.lower() in VIDEO_EXTENSIONS:
        raise OutputError(f"{out}: a checkpoint path must not end in {out.suffix} (use .pt)")
    if log == out:  # each epoch's log would replace the checkpoint
        raise OutputError(
            f"{out}: a checkpoint path must not end in .jsonl: its per-epoch log is written "
            f"beside it under that name (use .pt)"
        )


def _announce(plan: TrainRun, data: WindowDataset) -> None:
    """Prints what the run trains on, and from where it starts."""
    from ..model import STResNet, count_parameters

    parameters = count_parameters(STResNet(plan.model_config))
    stderr.print(
        f"{len(data.videos)} videos, {len(data.train_windows)} training / "
        f"{len(data.val_windows)} validation windows; model {parameters:,} parameters; "
        f"checkpoint -> {shown(plan.out)}",
        markup=False,
    )
    model_config, ema = plan.model_config, plan.config.ema
    start = "copy-last"
    if model_config.uses_flow:
        start = {
            "dis": "the classical DIS flow (flow baseline)",
            "damped": "the classical DIS flow, halved where it turned since the pair before",
        }[model_config.base_flow]
    holds = (
        f"an exponential moving average of the weights (decay {ema})"
        if ema
        else "the last step's weights"
    )
    stderr.print(f"training starts at {start}; the checkpoint holds {holds}", markup=False)


def _train_reporters(progress):
    """Returns the (on_step, on_epoch) callbacks that show training on ``progress``."""
    task = progress.add_task("train", total=1.0, info="")

    def on_step(s: dict) -> None:
        progress.update(
            task,
            completed=s["progress"],
            info=f"step {s['step']}  loss {s['loss']:.4f}  {s['samples_per_s']:.1f} samples/s",
        )

    def on_epoch(row: dict) -> None:
        if "val_psnr" not in row:
            progress.console.print(
                f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} (no validation set)"
            )
            return
        gain = row["val_psnr"] - row["val_psnr_copy_last"]
        over_flow = row["val_psnr"] - row["val_psnr_flow"]
        progress.console.print(
            f"epoch {row['epoch']}: val PSNR model {row['val_psnr']:.2f} dB, "
            f"copy-last {row['val_psnr_copy_last']:.2f} dB ({gain:+.2f}), "
            f"flow {row['val_psnr_flow']:.2f} dB ({over_flow:+.2f}), "
            f"train loss {row['train_loss']:.4f}, {row['samples_per_s']:.1f} samples/s"
        )

    return on_step, on_epoch


def cmd_train(args: argparse.Namespace) -> int:
    from ..distributed import env_world, process_group
    from ..outputs import claim_output
    from ..precision import resolve_device
    from ..training import train_run
    from ..tuning import arithmetic_for
    from ..weights import record_latest

    if args.resume is not None and args.init is not None:
        raise VidpredError("--resume and --init cannot be combined")
    plan = resumed_run_plan(args) if args.resume is not None else new_run_plan(args)
    _check_checkpoint_path(plan, args.force)
    world = env_world()  # under torchrun, only rank 0 talks to the user and writes
    if world.is_main:  # a second run naming this --out is refused
        check = functools.partial(_check_checkpoint_path, plan, args.force)
        args.claims.enter_context(claim_output(plan.out, check=check))
    data = plan.load_data(cache=not args.no_cache, cache_dir=args.cache_dir)
    if not args.quiet and world.is_main:
        _announce(plan, data)
    progress = stderr_progress(disable=args.quiet or not world.is_main)
    on_step, on_epoch = _train_reporters(progress)
    device = resolve_device(plan.config.device)
    with process_group(device.type), progress:
        try:
            train_run(
                plan,
                on_step=on_step,
                on_epoch=on_epoch,
                compile_model=args.compile,
                arithmetic=arithmetic_for(device, plan.config.precision, args.layout),
            )
        finally:
            if plan.out.exists() and world.is_main:
                record_latest(plan.out)
    if world.is_main:
        print_path(plan.out)
        if not args.quiet:
            _print_next_steps(plan)
    return 0


def _print_next_steps(plan: TrainRun) -> None:
    """Tells, on stderr, how to watch and score the new checkpoint: render a clip with it,
    and evaluate it on the held-out part of what it trained on."""
    weights = shell_word(plan.out)
    sources = " ".join(shell_word(s) for s in plan.sources)
    tail = plan.data_config.val_fraction
    lines = [
        "next: watch it:  vidpred render CLIP --weights " + weights,
        f"      score it:  vidpred eval {sources} --weights {weights}"
        + (f" --tail {tail:g}  (the part it never trained on)" if tail > 0 else ""),
    ]
    for line in lines:
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)
