"""CUDA paths (bf16 autocast, channels_last, torch.compile, batched inference); skipped on CPUs."""

import json

import pytest
import torch

from vidpred.checkpoint import load_checkpoint
from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.evaluation import evaluate
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.training import TrainConfig, train
from vidpred.video_options import VideoOptions

pytestmark = pytest.mark.requires_cuda


def _train(tmp_path, square_folder, name, **kwargs):
    model_config, data_config = ModelConfig(frames=4, width=16, depth=2), DataConfig(32, 0.2, 16)
    data = WindowDataset(
        load_videos(square_folder, 32, 5), model_config.input_offsets(), data_config
    )
    config = TrainConfig(steps=20, batch_size=8, warmup_steps=5, lr=3e-3, device="cuda")
    train(data, model_config, data_config, config, tmp_path / name, **kwargs)
    return tmp_path / name, model_config


@pytest.mark.parametrize("compile_model", [False, True])
def test_cuda_training_writes_a_checkpoint_the_cpu_loads(tmp_path, square_folder, compile_model):
    path, model_config = _train(tmp_path, square_folder, "gpu.pt", compile_model=compile_model)
    ckpt = load_checkpoint(path)
    assert list(ckpt.model) == list(STResNet(model_config).state_dict())  # no wrapper prefixes
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())
    x = torch.rand(2, 12, 32, 48)
    on_cpu = Predictor.from_checkpoint(path, "cpu").model(x)
    on_gpu = Predictor.from_checkpoint(path, "cuda").model(x.cuda()).cpu()
    assert not torch.equal(on_cpu, x[:, -3:])  # it learned something
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-2, rtol=0)  # TF32 convolutions on the GPU


def test_cuda_eval_in_batches_agrees_with_cpu(square_folder, trained_checkpoint):
    cpu = evaluate([square_folder], Predictor.from_checkpoint(trained_checkpoint, "cpu"))
    gpu = evaluate(
        [square_folder],
        Predictor.from_checkpoint(trained_checkpoint, "cuda"),
        video_options=VideoOptions(batch_size=5),
    )
    assert gpu["mean"]["model"]["psnr"] == pytest.approx(cpu["mean"]["model"]["psnr"], abs=0.1)
    assert gpu["mean"]["copy_last"]["psnr"] == pytest.approx(
        cpu["mean"]["copy_last"]["psnr"], abs=1e-3
    )


def test_cuda_quick_bench_reports_bf16_and_fp32(capsys):
    assert main(["-q", "bench", "--quick", "--json", "--device", "cuda"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"].startswith("cuda")
    assert (
        result["train_samples_per_s_memory"] > 0 and result["train_samples_per_s_memory_fp32"] > 0
    )
