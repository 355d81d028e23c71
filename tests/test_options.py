"""Every setting is declared once, on its configuration dataclass: `vidpred train` builds an
option from each field that is one, with the field's default, choices and help."""

import copy
import dataclasses
import types

import pytest
from helpers import cli, moving_square, usage_error, write_lossless

from vidpred.checkpoint import load_checkpoint
from vidpred.cli import _subparser, build_parser, parse_args
from vidpred.cli.train import new_run_plan
from vidpred.data import DataConfig
from vidpred.errors import CheckpointError, SettingError
from vidpred.model import ModelConfig
from vidpred.options import field_bounds, flag, is_option
from vidpred.runs import DEFAULT_EPOCHS
from vidpred.training import TrainConfig


@pytest.mark.parametrize("config_class", [ModelConfig, DataConfig, TrainConfig])
def test_every_config_field_is_an_option_of_train_with_its_default(config_class):
    options = {action.dest: action for action in _subparser(build_parser(), "train")._actions}
    for field in dataclasses.fields(config_class):
        # A field that is deliberately not an option says so (options.not_an_option).
        assert "option" in field.metadata, f"{field.name}: neither option() nor not_an_option()"
        if not is_option(field):
            assert field.name not in options, field.name
            continue
        action = options.get(field.name)
        assert action is not None, f"{field.name}: no option of `vidpred train` sets it"
        assert action.option_strings[0] == flag(field)
        assert action.default == field.default, field.name
        assert action.help == field.metadata["help"]
        assert action.choices == field.metadata.get("choices"), field.name


def test_train_without_options_trains_the_dataclasses_defaults(tmp_path):
    plan = new_run_plan(parse_args(["train", str(tmp_path), "--out", str(tmp_path / "m.pt")]))
    assert plan.model_config == ModelConfig()
    assert plan.data_config == DataConfig()
    assert plan.config == TrainConfig(epochs=DEFAULT_EPOCHS)  # a run needs a limit


def test_options_reach_their_fields(tmp_path):
    args = parse_args(
        [
            "train",
            str(tmp_path),
            "--out",
            str(tmp_path / "m.pt"),
            "--no-final-norm",
            "--norm",
            "group",
            "--period",
            "3",
            "--size",
            "32",
            "--loss",
            "mse",
            "--ema",
            "0",
            "--time-limit",
            "2.5",
        ]
    )
    plan = new_run_plan(args)
    assert (plan.model_config.final_norm, plan.model_config.norm) == (False, "group")
    assert (plan.model_config.period, plan.model_config.period_frames) == (3, 2)
    assert plan.data_config == DataConfig(size=32, crop=32)  # the default crop fits --size
    assert (plan.config.loss, plan.config.ema) == ("mse", 0.0)
    assert (plan.config.time_limit, plan.config.epochs) == (2.5, None)  # no default epochs


@pytest.fixture
def width_at_most_4(monkeypatch):
    """ModelConfig.width declared with high=4 instead of its real bound, for one test."""
    field = copy.copy(ModelConfig.__dataclass_fields__["width"])
    bounds = dataclasses.replace(field.metadata["bounds"], high=4)
    field.metadata = types.MappingProxyType({**field.metadata, "bounds": bounds})
    monkeypatch.setitem(ModelConfig.__dataclass_fields__, "width", field)
    field_bounds.cache_clear()
    yield
    monkeypatch.undo()
    field_bounds.cache_clear()


@pytest.mark.usefixtures("width_at_most_4")
def test_a_bound_declared_once_changes_the_option_the_config_and_the_checkpoint_check(
    capsys, trained_checkpoint
):
    """One option(..., high=...) is the only place the bound is written: the CLI option, the
    configuration's own check and the check of a stored checkpoint all follow it."""
    line = usage_error(capsys, "train", "clips", "--width", "8")
    assert line == "vidpred train: error: argument --width: must be an integer from 1 to 4, got 8"
    with pytest.raises(ValueError, match="width must be an integer from 1 to 4, got 8"):
        ModelConfig(width=8)
    ModelConfig(width=4)
    # The session's trained checkpoint has width 16.
    with pytest.raises(CheckpointError, match="model_config.width must be an integer from 1 to 4"):
        load_checkpoint(trained_checkpoint)


def test_a_setting_error_names_the_field_in_the_library_and_the_option_in_the_cli(tmp_path, capsys):
    with pytest.raises(SettingError) as raised:
        ModelConfig(frames=1, base_flow="dis")
    assert str(raised.value) == "a base flow needs at least 2 frames (frames 2 or more)"
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12, 32, 32))
    out = tmp_path / "m.pt"
    code, lines = cli(capsys, "train", clip, "--frames", "1", "--base-flow", "dis", "--out", out)
    assert (code, lines) == (
        1,
        ["vidpred: error: a base flow needs at least 2 frames (--frames 2 or more)"],
    )
    code, lines = cli(capsys, "train", clip, "--frames", "2", "--base-flow", "damped", "--out", out)
    assert (code, lines) == (
        1,
        [
            "vidpred: error: a damped base flow needs at least 3 frames (--frames 3 or more, "
            "or --base-flow dis)"
        ],
    )
    assert not (tmp_path / "m.pt").exists()


def test_a_planned_run_fits_the_default_crop_to_its_size_as_the_command_does(tmp_path):
    from vidpred.runs import TrainRun

    small = TrainRun.new([tmp_path], tmp_path / "m.pt", data_config=DataConfig(size=32))
    assert small.data_config.crop == 32
    args = parse_args(["train", str(tmp_path), "--size", "32", "--out", str(tmp_path / "m.pt")])
    assert new_run_plan(args).data_config == small.data_config
    # a crop the caller chose is kept
    chosen = TrainRun.new([tmp_path], tmp_path / "m.pt", data_config=DataConfig(size=32, crop=16))
    assert chosen.data_config.crop == 16
