"""Checkpoints are data, not code, and a broken one is named for what is wrong with it."""

import pickle
from dataclasses import replace

import pytest
import torch

from vidpred.checkpoint import VERSION, load_checkpoint, save_checkpoint
from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.errors import CheckpointError
from vidpred.model import ModelConfig
from vidpred.predict import Predictor
from vidpred.runs import stored_train_config
from vidpred.training import train


class Payload:
    """Unpickling this runs code that creates ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def raw_checkpoint(trained_checkpoint) -> dict:
    """The trained checkpoint as stored on disk (plain dicts, before load_checkpoint's parsing)."""
    return torch.load(trained_checkpoint, map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    "how", ["torch.save", "pickle protocol 2", "pickle default protocol", "hidden in history"]
)
def test_a_checkpoint_that_runs_code_is_refused_and_the_code_never_runs(
    tmp_path, capsys, how, trained_checkpoint
):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"format": "vidpred-checkpoint", "version": 1, "model": Payload(marker)}, evil)
    elif how == "hidden in history":
        ckpt = raw_checkpoint(trained_checkpoint)
        ckpt["history"].append({"epoch": 99, "note": Payload(marker)})
        torch.save(ckpt, evil)
    else:
        with open(evil, "wb") as f:
            pickle.dump(
                {"format": "vidpred-checkpoint", "model": Payload(marker)},
                f,
                protocol=2 if how == "pickle protocol 2" else pickle.DEFAULT_PROTOCOL,
            )
    # The payload is real: an unsafe load runs it.
    if how.startswith("pickle"):
        with open(evil, "rb") as f:
            pickle.load(f)
    else:
        torch.load(evil, weights_only=False)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(
        CheckpointError, match="evil.pt: (refused to load: it asks to run code|not a vidpred)"
    ):
        load_checkpoint(evil)
    assert not marker.exists()
    assert (
        main(["render", str(trained_checkpoint.parent / "nothing.avi"), "--weights", str(evil)])
        == 1
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("vidpred: error: ")
        and "evil.pt" in err
        and len(err.strip().splitlines()) == 1
    )
    assert "add_safe_globals" not in err  # torch's advice to allow-list the code is not passed on
    assert not marker.exists()


def test_newer_format_version_is_named(tmp_path, trained_checkpoint):
    ckpt = raw_checkpoint(trained_checkpoint)
    ckpt["version"] = VERSION + 1
    torch.save(ckpt, tmp_path / "new.pt")
    with pytest.raises(
        CheckpointError, match=f"format version {VERSION + 1} is newer .* \\({VERSION}\\); upgrade"
    ):
        load_checkpoint(tmp_path / "new.pt")
    ckpt["version"] = "1"
    torch.save(ckpt, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="no valid format version \\('1'\\)"):
        load_checkpoint(tmp_path / "odd.pt")


@pytest.mark.parametrize("key", ["model", "model_config", "data_config", "version"])
def test_missing_key_is_named(tmp_path, trained_checkpoint, key):
    ckpt = raw_checkpoint(trained_checkpoint)
    del ckpt[key]
    torch.save(ckpt, tmp_path / "partial.pt")
    with pytest.raises(
        CheckpointError, match=f"missing {key}" if key != "version" else "no valid format version"
    ):
        load_checkpoint(tmp_path / "partial.pt")


def test_mismatched_keys_are_named(tmp_path, trained_checkpoint):
    ckpt = raw_checkpoint(trained_checkpoint)
    ckpt["model_config"]["colour_space"] = "lab"
    torch.save(ckpt, tmp_path / "unknown.pt")
    with pytest.raises(
        CheckpointError, match="'model_config' has unknown fields \\['colour_space'\\]"
    ):
        load_checkpoint(tmp_path / "unknown.pt")

    ckpt = raw_checkpoint(trained_checkpoint)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = torch.zeros(3)
    torch.save(ckpt, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=f"do not match the model configuration .*{name}"):
        Predictor.from_checkpoint(tmp_path / "shape.pt", "cpu")

    ckpt = raw_checkpoint(trained_checkpoint)
    ckpt["model_config"]["width"] = 32  # weights were trained with 16 channels
    torch.save(ckpt, tmp_path / "config.pt")
    with pytest.raises(CheckpointError, match="do not match the model configuration"):
        Predictor.from_checkpoint(tmp_path / "config.pt", "cpu")

    ckpt = raw_checkpoint(trained_checkpoint)
    del ckpt["model"][name]
    torch.save(ckpt, tmp_path / "lost.pt")
    with pytest.raises(CheckpointError, match=f"Missing key.*{name}"):
        Predictor.from_checkpoint(tmp_path / "lost.pt", "cpu")


@pytest.mark.parametrize("damage", ["truncated", "not a dict", "other format"])
def test_damaged_or_foreign_files_are_not_checkpoints(tmp_path, trained_checkpoint, damage):
    path = tmp_path / "x.pt"
    if damage == "truncated":  # a copy that stopped half way
        data = trained_checkpoint.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not a dict":
        torch.save([1, 2, 3], path)
    else:
        torch.save({"format": "someone-elses", "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="x.pt: not a vidpred checkpoint"):
        load_checkpoint(path)


def test_resume_from_a_checkpoint_without_training_state(
    tmp_path, capsys, trained_checkpoint, square_folder
):
    ckpt = raw_checkpoint(trained_checkpoint)
    del ckpt["train_config"]
    torch.save(ckpt, tmp_path / "inference_only.pt")
    assert main(["train", "--resume", str(tmp_path / "inference_only.pt"), str(square_folder)]) == 1
    assert "cannot resume: it has no train_config" in capsys.readouterr().err

    ckpt = raw_checkpoint(trained_checkpoint)
    ckpt["train_config"]["momentum"] = 0.9
    torch.save(ckpt, tmp_path / "odd_config.pt")
    assert main(["train", "--resume", str(tmp_path / "odd_config.pt"), str(square_folder)]) == 1
    err = capsys.readouterr().err
    assert "cannot resume: bad train_config" in err and "momentum" in err


def test_resume_with_an_optimizer_state_that_does_not_fit(
    tmp_path, trained_checkpoint, square_folder
):
    ckpt = raw_checkpoint(trained_checkpoint)
    ckpt["optimizer"]["param_groups"][0]["params"] = [0]
    save_checkpoint(
        tmp_path / "odd_optimizer.pt",
        {k: v for k, v in ckpt.items() if k not in ("format", "version")},
    )
    resume = load_checkpoint(tmp_path / "odd_optimizer.pt")
    model_config, data_config = resume.model_config, resume.data_config
    data = WindowDataset(
        load_videos(square_folder, 32, 5), model_config.input_offsets(), data_config
    )
    with pytest.raises(
        CheckpointError, match="odd_optimizer.pt: optimizer state does not fit the model"
    ):
        train(
            data,
            model_config,
            data_config,
            replace(stored_train_config(resume), steps=25, device="cpu"),
            tmp_path / "m.pt",
            resume=resume,
        )
    assert not (tmp_path / "m.pt").exists()


def test_checkpoint_files_hold_only_plain_types(trained_checkpoint):
    """What makes weights_only loading possible: nothing in a checkpoint needs a class."""
    ckpt = raw_checkpoint(trained_checkpoint)  # weights_only=True: would raise otherwise

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return isinstance(value, str | int | float | bool | torch.Tensor | type(None))

    assert plain(ckpt)
    assert isinstance(ModelConfig(**ckpt["model_config"]), ModelConfig)
    assert isinstance(DataConfig(**ckpt["data_config"]), DataConfig)


def test_resume_refuses_settings_it_would_otherwise_ignore(tmp_path, square_folder, capsys):
    """A resumed run keeps its checkpoint's data, model and training settings: asking for
    others is one clear error (naming each, and --init as the way to change them), while
    the same values, the stop limits and --device are accepted."""
    out = tmp_path / "m.pt"
    assert (
        main(
            [
                "-q",
                "train",
                str(square_folder),
                "--steps",
                "2",
                "--out",
                str(out),
                "--size",
                "32",
                "--width",
                "8",
                "--depth",
                "1",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    before = out.read_bytes()
    capsys.readouterr()
    code = main(
        [
            "-q",
            "train",
            "--resume",
            str(out),
            "--steps",
            "4",
            "--size",
            "48",
            "--lr",
            "0.01",
            "--no-stem",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "--size 48 (it has 32)" in err and "--lr 0.01 (it has 0.001)" in err
    assert "--stem off (it has on)" in err and f"--init {out}" in err
    assert out.read_bytes() == before  # nothing trained, nothing written
    assert (
        main(
            ["-q", "train", "--resume", str(out), "--steps", "3", "--size", "32", "--device", "cpu"]
        )
        == 0
    )
    assert load_checkpoint(out).step == 3
