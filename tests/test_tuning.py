"""The arithmetic (bf16 or fp32, channels-last or contiguous) is chosen per machine by
measurement, remembered, and measured again when the machine or torch changes."""

import json

import pytest
import torch

from vidpred import precision, tuning
from vidpred.model import ModelConfig

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def measuring(monkeypatch, tmp_path):
    """The measured path (conftest turns it off for other tests), a fresh state folder, and
    nothing remembered in this process."""
    monkeypatch.delenv("VIDPRED_TUNING", raising=False)
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tuning, "_chosen", {})


def fake_rates(rates: dict[str, float], calls: list | None = None, prefix: str = ""):
    """A timing function that reports ``rates`` by candidate name (after ``prefix``) and
    records its calls."""

    def rate(device, bf16, channels_last):
        name = prefix + tuning.name_of(bf16, channels_last)
        if calls is not None:
            calls.append(name)
        return rates[name]

    return rate


# Inference rates for tests about training's choice: channels-last infers faster.
INFERENCE = {"inference fp32 contiguous": 12.0, "inference fp32 channels-last": 18.0}
infer = fake_rates(INFERENCE, prefix="inference ")


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
    chosen = tuning.choose(CPU, fake_rates(rates), infer)
    assert (chosen.bf16, chosen.channels_last) == expected
    # bf16 is timed only where the CPU has AMX; inference layouts only in fp32
    assert chosen.timings == {**rates, **({} if expected[0] else INFERENCE)}
    # and what a command runs with follows it, but where --precision fixes it
    auto = tuning.arithmetic_for(CPU)
    assert (auto.bf16, auto.channels_last) == expected
    assert tuning.arithmetic_for(CPU, "fp32").bf16 is False
    assert tuning.arithmetic_for(CPU, "bf16").bf16 is True


def test_the_choice_is_remembered_and_measured_again_when_torch_or_the_cpu_changes(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    calls = []
    rates = fake_rates({"fp32 contiguous": 33.0, "fp32 channels-last": 28.0}, calls)
    assert tuning.choose(CPU, rates, infer).channels_last is False
    assert len(calls) == 2 * tuning.ROUNDS  # alternated: each candidate once per round
    assert calls[:2] == ["fp32 contiguous", "fp32 channels-last"]
    stored = json.loads((tmp_path / "state" / tuning.TUNING_FILE).read_text())
    assert stored["cpu"]["key"]["torch"] == torch.__version__
    # A new process (nothing in memory) reads it back instead of measuring.
    monkeypatch.setattr(tuning, "_chosen", {})
    assert tuning.choose(CPU, rates, infer).channels_last is False and len(calls) == 6
    # Another torch version: measured again.
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(torch, "__version__", "99.0")
    assert tuning.choose(CPU, rates, infer) and len(calls) == 12
    # Another CPU: measured again.
    monkeypatch.setattr(tuning, "_chosen", {})
    real = precision.describe_machine
    monkeypatch.setattr(tuning, "describe_machine", lambda d: {**real(d), "cpu": "Other CPU"})
    assert tuning.choose(CPU, rates, infer) and len(calls) == 18


def test_overrides_and_the_rule_of_thumb(monkeypatch):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(tuning, "training_step_rate", lambda *a: pytest.fail("measured"))
    monkeypatch.setenv("VIDPRED_TUNING", "off")
    assert tuning.choose(CPU) == tuning.Arithmetic(bf16=False, channels_last=True, timings={})
    monkeypatch.delenv("VIDPRED_TUNING")
    # --precision and --layout both fixed: nothing to measure
    fixed = tuning.arithmetic_for(CPU, "fp32", "contiguous")
    assert fixed == tuning.Arithmetic(False, False, {}, channels_last_inference=False)
    with pytest.raises(ValueError, match="layout must be one of"):
        tuning.arithmetic_for(CPU, "fp32", "sideways")


def test_a_predictor_given_its_arithmetic_measures_nothing(monkeypatch):
    """The arithmetic is resolved once per command and passed on: building a predictor
    with it never starts the measurement."""
    monkeypatch.setattr(tuning, "training_step_rate", lambda *a: pytest.fail("measured"))
    monkeypatch.setattr(tuning, "inference_rate", lambda *a: pytest.fail("measured"))
    from vidpred.data import DataConfig
    from vidpred.model import STResNet
    from vidpred.predict import Predictor

    config = ModelConfig(width=4, depth=1)
    arithmetic = tuning.Arithmetic(False, False, {}, channels_last_inference=False)
    predictor = Predictor(STResNet(config), config, DataConfig(size=32), CPU, arithmetic=arithmetic)
    assert (predictor.bf16, predictor.channels_last) == (False, False)


def test_a_state_folder_that_cannot_be_written_is_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path / "file" / "state"))
    rates = fake_rates({"fp32 contiguous": 33.0, "fp32 channels-last": 28.0})
    assert tuning.choose(CPU, rates, infer).channels_last is False


def test_the_real_measurement_times_both_layouts(monkeypatch):
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(tuning, "WARMUP_STEPS", 0)
    monkeypatch.setattr(tuning, "TIMED_STEPS", 1)
    monkeypatch.setattr(tuning, "ROUNDS", 1)
    chosen = tuning.measure(CPU)
    assert set(chosen.timings) == {"fp32 contiguous", "fp32 channels-last", *INFERENCE}
    assert all(rate > 0 for rate in chosen.timings.values())


def test_inference_takes_its_own_layout(monkeypatch):
    """Training and inference may favour different layouts: each uses its own."""
    monkeypatch.setattr(tuning, "cpu_has_amx_bf16", lambda: False)
    training = fake_rates({"fp32 contiguous": 24.0, "fp32 channels-last": 22.0})
    chosen = tuning.choose(CPU, training, infer)
    assert chosen.channels_last is False and chosen.channels_last_inference is True
    auto = tuning.arithmetic_for(CPU)
    assert (auto.channels_last, auto.channels_last_inference) == (False, True)
    # --layout fixes both.
    fixed = tuning.arithmetic_for(CPU, layout="channels-last")
    assert (fixed.channels_last, fixed.channels_last_inference) == (True, True)


CUDA = torch.device("cuda")


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device as the choosing logic sees it, on a CPU-only machine: bf16 units, a
    named GPU (the arithmetic is passed in, so none is measured)."""
    monkeypatch.setattr(tuning, "has_bf16_units", lambda device: True)
    monkeypatch.setattr(tuning, "describe_machine", lambda device: {"gpu": "Stub GPU"})
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)


def batch_rates(fp32: dict[int, float], bf16: dict[int, float], calls: list | None = None):
    """A timing function reporting samples/s by precision and batch; a batch missing from
    both tables does not fit (out of memory)."""

    def rate(device, use_bf16, channels_last, *, batch, model_config, size):
        if calls is not None:
            calls.append(("bf16" if use_bf16 else "fp32", batch))
        table = bf16 if use_bf16 else fp32
        if batch not in table:
            raise torch.cuda.OutOfMemoryError("stub: does not fit")
        return table[batch]

    return rate


def choose(rate, precision="auto", largest=4096, given=None):
    return tuning.choose_batch(
        CUDA,
        precision,
        ModelConfig(),
        (64, 64),
        largest,
        given=given,
        rate=rate,
        arithmetic=tuning.Arithmetic(precision == "bf16", True, {}),
    )


# The H200's measured fp32 / bf16 samples/s at 8, 32, 128 and 512 (docs/speed.md), the
# batches between filled in.
H200_FP32 = {8: 1247, 16: 2600, 32: 5344, 64: 9800, 128: 17967, 256: 21000, 512: 23097, 1024: 23500}
H200_BF16 = {8: 1087, 16: 2000, 32: 3725, 64: 7900, 128: 14960, 256: 25000, 512: 33309, 1024: 34500}


def test_on_cuda_the_smallest_batch_that_fills_the_gpu_is_chosen_in_its_faster_precision(
    fake_gpu,
):
    calls = []
    chosen = choose(batch_rates(H200_FP32, H200_BF16, calls))
    # 1024 grows less than 10% over 512, so doubling stops there; 512 is within 90% of it.
    assert (chosen.batch_size, chosen.bf16) == (512, True)
    assert {batch for _, batch in calls} == {8, 16, 32, 64, 128, 256, 512, 1024}
    assert chosen.timings["bf16 512"] == 33309 and chosen.timings["fp32 8"] == 1247
    assert "batch 512 per process in bf16" in chosen.rule


def test_on_cuda_fp32_wins_where_bf16_is_slower_at_the_chosen_batch(fake_gpu):
    fp32 = {8: 100, 16: 190, 32: 350, 64: 370, 128: 380}
    bf16 = {8: 80, 16: 150, 32: 300, 64: 360, 128: 385}
    calls = []
    chosen = choose(batch_rates(fp32, bf16, calls))
    assert (chosen.batch_size, chosen.bf16) == (32, False)
    assert max(batch for _, batch in calls) == 64  # 64 gained under 10%: no need to try 128


def test_on_cuda_the_batch_stops_at_what_fits_and_at_the_data(fake_gpu):
    fits = {b: 1000.0 * b for b in (8, 16, 32, 64)}  # still growing when 128 runs out of memory
    assert choose(batch_rates(fits, fits)).batch_size == 64
    calls = []
    assert choose(batch_rates(fits, fits, calls), largest=20).batch_size == 16
    assert max(batch for _, batch in calls) == 16  # never more than the windows
    with pytest.raises(tuning.VidpredError, match="does not fit"):
        choose(batch_rates({}, {}), largest=1000)  # another key: not the choice above


def test_on_cuda_a_given_batch_or_precision_narrows_the_measurement(fake_gpu):
    calls = []
    chosen = choose(batch_rates(H200_FP32, H200_BF16, calls), given=32)
    assert (chosen.batch_size, chosen.bf16) == (32, False)  # fp32 is faster at 32 on an H200
    assert sorted(calls) == [("bf16", 32), ("fp32", 32)]
    calls.clear()
    chosen = choose(batch_rates(H200_FP32, H200_BF16, calls), precision="fp32")
    assert chosen.bf16 is False and {p for p, _ in calls} == {"fp32"}
    assert chosen.batch_size == 256  # fp32 alone: 512 gains 10% over 256, 1024 does not
    # A given batch and precision leave nothing to measure.
    chosen = choose(lambda *a, **k: pytest.fail("measured"), precision="bf16", given=64)
    assert (chosen.batch_size, chosen.bf16, chosen.timings) == (64, True, {})


def test_the_batch_choice_is_remembered_per_gpu_and_model(fake_gpu, monkeypatch):
    calls = []
    rate = batch_rates(H200_FP32, H200_BF16, calls)
    first = choose(rate)
    measured = len(calls)
    monkeypatch.setattr(tuning, "_chosen", {})  # a new process reads the state file
    assert choose(rate) == first and len(calls) == measured
    monkeypatch.setattr(tuning, "describe_machine", lambda device: {"gpu": "Other GPU"})
    assert choose(rate) == first and len(calls) == 2 * measured


def test_on_a_cpu_the_batch_is_eight_unmeasured(monkeypatch):
    monkeypatch.setenv("VIDPRED_TUNING", "off")
    chosen = tuning.choose_batch(
        CPU,
        "fp32",
        ModelConfig(),
        (64, 64),
        1000,
        rate=lambda *a, **k: pytest.fail(),
        arithmetic=tuning.arithmetic_for(CPU, "fp32"),
    )
    assert (chosen.batch_size, chosen.bf16) == (tuning.CPU_BATCH, False) == (8, False)
    assert "CPU default" in chosen.rule
