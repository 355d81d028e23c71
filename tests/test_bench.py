"""`vidpred bench`: every number is there, and the FLOP count is the convolutions' arithmetic."""

import json
import math

from vidpred.bench import QUICK, inference_flops_per_frame, train_flops_per_sample
from vidpred.cli import main
from vidpred.model import ModelConfig

KEYS = (
    "matmul_gflops",
    "train_flops_per_sample",
    "infer_gflop_per_frame",
    "train_samples_per_s_loader",
    "train_samples_per_s_memory",
    "train_gflops",
    "decode_fps_opencv",
    "decode_fps_reader",
    "decode_fps_cache",
    "infer_fps",
    "render_fps",
    "render_native_fps",
    "peak_rss_mb",
    # beyond the list: where render's time goes
    "render_vs_infer",
    "infer_cpu_ms_per_frame",
    "render_cpu_ms_per_frame",
    "encode_cpu_ms_per_frame",
)


def conv_training_flops(config: ModelConfig, side: int) -> int:
    """Forward 3x3 convs at 2 FLOPs per multiply-add, times 3 for forward + backward, less the
    first conv's input gradient (the input needs none)."""
    pixels, w, k = side * side, config.width, 9
    head = 2 * 3 * config.frames * w * k * pixels
    body = 2 * 2 * config.depth * w * w * k * pixels
    tail = 2 * w * 3 * k * pixels
    return 3 * (head + body + tail) - head


def test_flops_are_counted_not_guessed():
    plain = ModelConfig(
        width=64, depth=4, stem=False, head="residual", norm="none"
    )  # the formula's model
    assert train_flops_per_sample(plain, 64) == conv_training_flops(plain, 64)


def test_inference_flops_are_the_forward_convolutions():
    # The formula's model at 96x172: forward only, no backward.
    plain = ModelConfig(width=64, depth=4, stem=False, head="residual", norm="none")
    pixels, w, k = 96 * 172, 64, 9
    forward = 2 * pixels * k * (3 * plain.frames * w + 2 * plain.depth * w * w + w * 3)
    assert inference_flops_per_frame(plain) == forward
    # The default model, issue 21's ceiling: at most 4.0 GFLOP a frame (3.999: the damped
    # start's extra input, 0.019, is paid for by pooling the flow input, 0.043).
    assert 3.5e9 < inference_flops_per_frame(ModelConfig()) <= 4.0e9
    unpooled = inference_flops_per_frame(ModelConfig(pool_flow_input=False))
    assert unpooled - inference_flops_per_frame(ModelConfig()) > 0.04e9


def test_quick_bench_prints_one_json_object_with_every_number(capsys):
    # --layout overrides the measured layout (here the rule of thumb: channels-last).
    # --precision fp32 shows what a CPU without AMX gets, even on one with it.
    argv = ["-q", "bench", "--quick", "--json", "--layout", "contiguous", "--precision", "fp32"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for key in KEYS:
        value = result[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)
    assert result["train_flops_per_sample"] == conv_training_flops(QUICK.model, QUICK.data.crop)
    assert math.isclose(
        result["train_gflops"],
        result["train_flops_per_sample"] * result["train_samples_per_s_loader"] / 1e9,
    )
    assert result["quick"] is True and result["device"] == "cpu"
    # what was measured: the machine, and the choices made on it
    assert result["cpu"] and isinstance(result["cpu_flags"], list) and result["threads"] >= 1
    assert result["precision"] == "fp32" and result["bf16"] is False
    assert result["channels_last"] is False


def test_in_memory_training_times_the_trainers_own_step(monkeypatch, square_folder):
    """The bench once timed its own copy of the step: another lr, and no weight average."""
    from vidpred import training
    from vidpred.bench import train_memory_samples_per_s
    from vidpred.data import DataConfig, WindowDataset, load_videos
    from vidpred.tuning import Arithmetic

    updates = []
    update = training.WeightAverage.update

    def counted(self, model):
        updates.append(1)
        update(self, model)

    monkeypatch.setattr(training.WeightAverage, "update", counted)
    videos = load_videos(square_folder, 32, 5)
    data = WindowDataset(videos, QUICK.model.input_offsets(), DataConfig(size=32, crop=16))
    config = training.TrainConfig(steps=3, batch_size=4, device="cpu")
    arithmetic = Arithmetic(bf16=False, channels_last=False, timings={})
    assert train_memory_samples_per_s(data, QUICK.model, config, arithmetic, warmup=1) > 0
    assert len(updates) == 3  # the trainer's step keeps the weight average checkpoints hold


def test_the_bench_names_the_machine_it_measured(monkeypatch):
    """Speed depends on the CPU's matrix units: the report says which CPU and flags it saw."""
    import torch

    from vidpred import precision

    fake = {"model name": "Example Xeon", "flags": "fpu sse2 avx2 avx512f amx_tile amx_bf16"}
    monkeypatch.setattr(precision, "_cpuinfo", lambda: fake)
    machine = precision.describe_machine(torch.device("cpu"))
    assert machine["cpu"] == "Example Xeon"
    assert machine["cpu_flags"] == ["amx_bf16", "amx_tile", "avx512f", "avx2"]
    assert machine["threads"] == torch.get_num_threads() and machine["torch"] == torch.__version__
    assert precision.cpu_has_amx_bf16()
    monkeypatch.setattr(precision, "_cpuinfo", lambda: {"flags": "fpu sse2"})
    assert (
        not precision.cpu_has_amx_bf16()
        and precision.describe_machine(torch.device("cpu"))["cpu_flags"] == []
    )


def test_stages_count_each_moment_once_and_nothing_when_not_recording():
    import time

    from vidpred.stages import recording, stage

    with stage("outside"):  # not recording: nothing kept
        pass
    with recording() as seconds:
        with stage("outer"):
            time.sleep(0.05)
            with stage("inner"):
                time.sleep(0.1)
    assert set(seconds) == {"outer", "inner"}
    assert 0.09 < seconds["inner"] < 0.3 and 0.04 < seconds["outer"] < 0.09
