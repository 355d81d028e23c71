"""The arithmetic (bf16 or fp32, channels-last or contiguous) is chosen per machine by
measurement, remembered, and measured again when the machine or torch changes."""

import json

import pytest
import torch

from vidpred import precision, tuning

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def measuring(monkeypatch, tmp_path):
    """The measured path (conftest turns it off for other tests), a fresh state folder, and
    nothing remembered in this process."""
    monkeypatch.delenv("VIDPRED_TUNING", raising=False)
    monkeypatch.delenv("VIDPRED_LAYOUT", raising=False)
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tuning, "_chosen", {})


def fake_rates(rates: dict[str, float], calls: list | None = None):
    """A timing function that reports ``rates`` by candidate name and records its calls."""

    def rate(device, bf16, channels_last):
        name = tuning.name_of(bf16, channels_last)
        if calls is not None:
            calls.append(name)
        return rates[name]

    return rate


@pytest.mark.parametrize(
    "amx, rates, expected",
    [
        (False, {"fp32 contiguous": 33.0, "fp32 channels-last": 28.0}, (False, False)),
        (False, {"fp32 contiguous": 40.0, "fp32 channels-last": 44.0}, (False, True)),
        (
            True,
            {"fp32 contiguous": 40.0, "fp32 channels-last": 44.0, "bf16 channels-last": 96.0},
            (True, True),
        ),
        (
            True,
            {"fp32 contiguous": 40.0, "fp32 channels-last": 30.0, "bf16 channels-last": 35.0},
            (False, False),
        ),
    ],
)
def test_the_fastest_candidate_is_chosen(monkeypatch, amx, rates, expected):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: amx)
    chosen = tuning.choose(CPU, fake_rates(rates))
    assert (chosen.bf16, chosen.channels_last) == expected
    assert chosen.timings == rates  # bf16 is timed only where the CPU has AMX
    # and what the model uses follows it
    assert precision.use_bf16("auto", CPU) is expected[0]
    assert precision.use_channels_last(CPU) is expected[1]
    assert precision.use_bf16("fp32", CPU) is False and precision.use_bf16("bf16", CPU) is True


def test_the_choice_is_remembered_and_measured_again_when_torch_or_the_cpu_changes(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    calls = []
    rates = fake_rates({"fp32 contiguous": 33.0, "fp32 channels-last": 28.0}, calls)
    assert tuning.choose(CPU, rates).channels_last is False
    assert len(calls) == 2
    stored = json.loads((tmp_path / "state" / tuning.TUNING_FILE).read_text())
    assert stored["cpu"]["key"]["torch"] == torch.__version__
    # A new process (nothing in memory) reads it back instead of measuring.
    monkeypatch.setattr(tuning, "_chosen", {})
    assert tuning.choose(CPU, rates).channels_last is False and len(calls) == 2
    # Another torch version: measured again.
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(torch, "__version__", "99.0")
    assert tuning.choose(CPU, rates) and len(calls) == 4
    # Another CPU: measured again.
    monkeypatch.setattr(tuning, "_chosen", {})
    real = precision.describe_machine
    monkeypatch.setattr(tuning, "describe_machine", lambda d: {**real(d), "cpu": "Other CPU"})
    assert tuning.choose(CPU, rates) and len(calls) == 6


def test_overrides_and_the_rule_of_thumb(monkeypatch):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(tuning, "training_step_rate", lambda *a: pytest.fail("measured"))
    monkeypatch.setenv("VIDPRED_TUNING", "off")
    assert tuning.choose(CPU) == tuning.Arithmetic(bf16=False, channels_last=True, timings={})
    monkeypatch.setenv("VIDPRED_LAYOUT", "contiguous")
    assert precision.use_channels_last(CPU) is False
    monkeypatch.setenv("VIDPRED_LAYOUT", "sideways")
    with pytest.raises(ValueError, match="VIDPRED_LAYOUT must be one of"):
        precision.use_channels_last(CPU)


def test_a_state_folder_that_cannot_be_written_is_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path / "file" / "state"))
    rates = fake_rates({"fp32 contiguous": 33.0, "fp32 channels-last": 28.0})
    assert tuning.choose(CPU, rates).channels_last is False


def test_the_real_measurement_times_both_layouts(monkeypatch):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(tuning, "WARMUP_STEPS", 0)
    monkeypatch.setattr(tuning, "TIMED_STEPS", 1)
    chosen = tuning.measure(CPU)
    assert set(chosen.timings) == {"fp32 contiguous", "fp32 channels-last"}
    assert all(rate > 0 for rate in chosen.timings.values())
