"""Batches for the training step: uint8 shares of a seeded global batch, and the GPU paths."""

import functools

import torch

from vidpred.checkpoint import load_checkpoint
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.model import ModelConfig, STResNet
from vidpred.training import TrainConfig, train


def test_rank_shares_are_slices_of_the_one_global_batch(square_folder):
    data = WindowDataset(
        load_videos(square_folder, 32, 5), [-4, -3, -2, -1], DataConfig(32, 0.2, 16)
    )
    plan = data.epoch_plan(seed=5, epoch=2)
    for step in range(data.steps_per_epoch(8)):
        inputs, targets = data.train_batch(plan, step, 8)
        whole = data.train_batch_uint8(plan, step, 8)
        assert whole[0].dtype == torch.uint8 and whole[0].shape == (8, 12, 16, 16)
        assert torch.equal(whole[0].float() / 255, inputs) and torch.equal(
            whole[1].float() / 255, targets
        )
        for world_size in (2, 4):
            shares = [
                data.train_batch_uint8(plan, step, 8, rank=r, world_size=world_size)
                for r in range(world_size)
            ]
            assert all(s[0].shape[0] == 8 // world_size for s in shares)
            assert torch.equal(torch.cat([s[0] for s in shares]), whole[0])
            assert torch.equal(torch.cat([s[1] for s in shares]), whole[1])


def test_compiled_training_saves_the_plain_modules_weights(tmp_path, square_folder, monkeypatch):
    # The eager backend traces with TorchDynamo and wraps the module exactly as inductor
    # would, without minutes of C++ compilation on a CPU.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    model_config, data_config = ModelConfig(frames=4, width=8, depth=1), DataConfig(32, 0.2, 16)
    data = WindowDataset(
        load_videos(square_folder, 32, 5), model_config.input_offsets(), data_config
    )
    config = TrainConfig(steps=4, batch_size=4, warmup_steps=2, device="cpu")
    compiled = train(data, model_config, data_config, config, tmp_path / "c.pt", compile_model=True)
    plain = train(data, model_config, data_config, config, tmp_path / "p.pt")
    saved = load_checkpoint(tmp_path / "c.pt").model
    assert list(saved) == list(STResNet(model_config).state_dict())  # no "_orig_mod." prefix
    for key, value in plain.model.items():
        torch.testing.assert_close(compiled.model[key], value, atol=1e-6, rtol=0)
