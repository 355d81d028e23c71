from pathlib import Path

import pytest
import torch

from vidpred.model import ModelConfig, STResNet, warp, warp_bicubic


def _inputs(config: ModelConfig, h: int = 24, w: int = 32, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(batch, 3 * len(config.input_offsets()), h, w)


def _run(model: STResNet, x: torch.Tensor) -> torch.Tensor:
    """The model's prediction of stacked inputs, with a fixed random base flow if it takes one."""
    if not model.config.uses_flow:
        return model(x)
    g = torch.Generator().manual_seed(1)
    pairs = model.config.flow_pairs
    return model(x, torch.randn(x.shape[0], 2 * pairs, *x.shape[2:], generator=g))


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(frames=4, width=8, depth=2, base_flow="none"),
        ModelConfig(frames=3, width=8, depth=1, stem=True, norm="batch", base_flow="none"),
        ModelConfig(
            frames=2,
            width=8,
            depth=1,
            period=5,
            period_frames=2,
            trend=9,
            trend_frames=1,
            base_flow="none",
        ),
        ModelConfig(frames=4, width=8, depth=1, head="warp", base_flow="none", norm="batch"),
        ModelConfig(
            frames=4,
            width=8,
            depth=1,
            head="warp",
            stem=True,
            period=3,
            period_frames=1,
            base_flow="none",
        ),
        ModelConfig(frames=4, width=8, depth=1, head="residual"),
    ],
)
def test_untrained_model_is_exactly_copy_last(config):
    model = STResNet(config).eval()
    x = _inputs(config)
    assert torch.equal(model(x), x[:, -3:])


def test_output_is_three_channels_in_unit_range_at_any_size():
    config = ModelConfig(frames=4, width=8, depth=1, stem=True, period=3, period_frames=1)
    model = STResNet(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)  # large weights: the clamp must hold
    for h, w in ((16, 16), (24, 40), (36, 20)):
        with torch.no_grad():
            y = _run(model, _inputs(config, h, w))
        assert y.shape == (2, 3, h, w)
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


@pytest.mark.parametrize("head", ["residual", "warp"])
def test_every_parameter_gets_a_gradient_after_a_few_steps(head):
    config = ModelConfig(
        frames=4, width=8, depth=2, norm="batch", period=2, period_frames=1, head=head
    )
    model = STResNet(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = _inputs(config, batch=4)
    target = x[:, -3:].roll(1, dims=-1)
    for _ in range(3):
        optimizer.zero_grad()
        loss = (_run(model, x) - target).abs().mean()
        loss.backward()
        optimizer.step()
    optimizer.zero_grad()
    (_run(model, x) - target).abs().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_predictions_are_causal():
    """Changing frame t or later never changes the prediction of frame t: the model's inputs
    are only the frames at t + offsets, all negative."""
    from vidpred.data import stack_window

    config = ModelConfig(frames=4, width=8, depth=1, period=3, period_frames=2)
    assert all(o < 0 for o in config.input_offsets())
    model = STResNet(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    frames = torch.randint(0, 256, (20, 16, 16, 3), dtype=torch.uint8)
    t = 12
    before = _run(model, stack_window(frames, t, config.input_offsets())[None])
    changed = frames.clone()
    changed[t:] = 255 - changed[t:]
    after = _run(model, stack_window(changed, t, config.input_offsets())[None])
    assert torch.equal(before, after)
    changed[t - 1] = 0  # changing a real input frame does change it
    assert not torch.equal(
        before, _run(model, stack_window(changed, t, config.input_offsets())[None])
    )


def test_offsets_and_history():
    config = ModelConfig(frames=4, period=6, period_frames=2, trend=10, trend_frames=2)
    assert config.branch_offsets() == {
        "trend": [-20, -10],
        "period": [-12, -6],
        "closeness": [-4, -3, -2, -1],
    }
    assert config.input_offsets()[-1] == -1  # the newest frame comes last
    assert config.history == 20
    with pytest.raises(ValueError):
        ModelConfig(period=3, period_frames=0)


def test_warp_moves_content_by_the_flow():
    from vidpred.model import warp

    image = torch.rand(1, 3, 8, 10)
    flow = torch.zeros(1, 2, 8, 10)
    assert torch.equal(warp(image, flow), image)
    flow[:, 0] = 2.0  # sample two pixels to the right: content moves left
    assert torch.allclose(warp(image, flow)[..., :-2], image[..., 2:])
    flow[:, 0], flow[:, 1] = 0.0, 0.5  # halfway between rows
    assert torch.allclose(
        warp(image, flow)[..., :-1, :], (image[..., 1:, :] + image[..., :-1, :]) / 2
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_the_fast_cpu_warp_samples_what_the_differentiable_one_does(channels):
    from vidpred.warping import _gather_warp, _remap_warp

    torch.manual_seed(0)
    image = torch.rand(2, channels, 37, 53)
    flow = torch.randn(2, 2, 37, 53) * 6  # far past the edges too
    with torch.no_grad():
        assert torch.equal(warp(image, flow), _remap_warp(image, flow))  # what inference uses
    exact = _gather_warp(image, flow)
    assert (_remap_warp(image, flow) - exact).abs().max() < 1e-4  # float rounding, not 1/32 px
    zero = torch.zeros_like(flow)
    assert torch.equal(_remap_warp(image, zero), image)
    # Training needs the gradient: the gathers.
    image.requires_grad_(True)
    warp(image, flow).sum().backward()
    assert image.grad is not None


def _assert_old_checkpoint_loads_as_it_was(
    tmp_path, old: ModelConfig, missing_field: str, stored_extra: dict | None = None
) -> None:
    """Saves a model of config ``old`` as a checkpoint written before ``missing_field``
    existed (with ``stored_extra``: fields it had that are gone now), and checks that it
    loads with ``old``'s value and predicts exactly as before."""
    from vidpred.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from vidpred.data import DataConfig

    model = STResNet(old)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    stored = {**old.to_dict(), **(stored_extra or {})}
    if missing_field:
        del stored[missing_field]
    save_checkpoint(
        tmp_path / "old.pt",
        {
            "model_config": stored,
            "data_config": DataConfig().to_dict(),
            "model": model.state_dict(),
        },
    )
    loaded = model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))
    assert loaded.config == old
    x = _inputs(old)
    with torch.no_grad():
        assert torch.equal(_run(loaded.eval(), x), _run(model.eval(), x))


def test_checkpoints_from_before_the_warp_head_still_load(tmp_path):
    """The first checkpoints have no 'head' field and a residual output conv of 3 channels;
    they must load as the residual models they are, not with today's defaults."""
    old = ModelConfig(frames=4, width=8, depth=1, stem=False, head="residual")
    _assert_old_checkpoint_loads_as_it_was(tmp_path, old, "head")


def test_batch_norm_checkpoints_from_before_the_final_norm_still_load(tmp_path):
    """Batch-norm checkpoints written before ``final_norm`` existed have no BN before the last
    ReLU; they must load and predict exactly as they did."""
    old = ModelConfig(frames=4, width=8, depth=1, final_norm=False, norm="batch", base_flow="none")
    _assert_old_checkpoint_loads_as_it_was(tmp_path, old, "final_norm", {"batch_norm": True})


@pytest.mark.parametrize("field", ["norm", "base_flow", "blend", "sharp_warp"])
def test_checkpoints_from_before_group_norm_and_the_base_flow_still_load(tmp_path, field):
    """Checkpoints without ``norm`` are batch-norm models, without ``base_flow`` they start
    from zero flow, without ``blend`` they have no blend; they load and predict as they did."""
    old = ModelConfig(
        frames=4, width=8, depth=1, norm="batch", base_flow="none", blend=False, sharp_warp=False
    )
    _assert_old_checkpoint_loads_as_it_was(tmp_path, old, field, {"batch_norm": True})


@pytest.mark.parametrize("stored_norm", ["batch", "group", None])
def test_checkpoints_that_switched_normalisation_off_load_without_it(tmp_path, stored_norm):
    """Before ``norm`` could be "none", ``batch_norm: false`` switched normalisation off
    whatever ``norm`` said; the oldest checkpoints have neither field (no normalisation)."""
    old = ModelConfig(frames=4, width=8, depth=1, norm="none", base_flow="none", blend=False)
    extra = {"batch_norm": False} if stored_norm else {}
    if stored_norm:
        extra["norm"] = stored_norm
    _assert_old_checkpoint_loads_as_it_was(tmp_path, old, None if stored_norm else "norm", extra)


def test_the_shipped_weights_are_the_default_design():
    """`vidpred train` can start from the shipped weights only if they are the architecture
    its defaults build; a retrained default.pt must keep up with ModelConfig's defaults."""
    from vidpred.checkpoint import load_checkpoint

    config = load_checkpoint(Path(__file__).parents[1] / "weights" / "default.pt").model_config
    assert config == ModelConfig()


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_with_final_norm_the_last_relu_sees_both_signs_after_training(norm):
    """The frozen-at-copy-last failure: the trunk's last ReLU got only negative inputs. With
    the final normalisation, a few aggressive steps leave it alive (many inputs positive)."""
    torch.manual_seed(0)
    config = ModelConfig(frames=4, width=8, depth=2, stem=False, norm=norm, base_flow="none")
    model = STResNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
    x, y = torch.rand(4, 12, 16, 16), torch.rand(4, 3, 16, 16)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.l1_loss(_run(model, x), y).backward()
        optimizer.step()
    branch = model.branches["closeness"].eval()
    with torch.no_grad():
        before_relu = branch.norm(branch.units(branch.head(x)))
    assert 0.1 < (before_relu > 0).float().mean() < 0.9


def test_period_and_trend_off_is_the_closeness_only_model():
    plain = STResNet(ModelConfig(frames=4, width=8, depth=1, head="residual", stem=False))
    assert set(plain.branches) == {"closeness"}
    assert ModelConfig(frames=4, period=0, trend=0).input_offsets() == [-4, -3, -2, -1]


def test_fusion_works_at_any_frame_size():
    config = ModelConfig(
        frames=2, width=8, depth=1, period=3, period_frames=1, trend=5, trend_frames=1,
        base_flow="dis",
    )  # fmt: skip
    model = STResNet(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    for h, w in ((8, 8), (20, 44), (64, 36)):
        with torch.no_grad():
            assert _run(model, _inputs(config, h, w)).shape == (2, 3, h, w)


def test_every_output_of_the_flow_model_gets_a_gradient_at_initialisation():
    """The output conv starts at zero; each of its output channels (residual, flow
    correction, blend) must still get a gradient, or that part never starts to learn."""
    config = ModelConfig(frames=4, width=8, depth=1)
    assert config.uses_flow and config.blend
    model = STResNet(config)
    x = _inputs(config, batch=4)
    _run(model, x).sub(x[:, -3:].roll(1, dims=-1)).abs().mean().backward()
    grad = model.branches["closeness"].tail.weight.grad  # (out channels, width, 3, 3)
    assert (grad.abs().sum(dim=(1, 2, 3)) > 0).all()


def test_untrained_sharp_warp_model_is_exactly_the_flow_baseline():
    """The bicubic mix starts at 0: the untrained model still predicts the flow baseline's
    bilinear warp bit for bit, and every output channel (the mix's too) gets a gradient."""
    config = ModelConfig(frames=4, width=8, depth=1, sharp_warp=True, base_flow="dis")
    model = STResNet(config)
    x = _inputs(config, batch=4)
    g = torch.Generator().manual_seed(1)
    flow = torch.randn(4, 2, *x.shape[2:], generator=g)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, flow), warp(x[:, -3:], flow).clamp(0, 1))
    model.train()
    model(x, flow).sub(x[:, -3:].roll(1, dims=-1)).abs().mean().backward()
    grad = model.branches["closeness"].tail.weight.grad  # (out channels, width, 3, 3)
    assert grad.shape[0] == 12 + 2 + 4 + 4  # residual, flow, blend, sharpness (stem: x4)
    assert (grad.abs().sum(dim=(1, 2, 3)) > 0).all()


def test_bicubic_warp_shifts_exactly_and_keeps_more_detail_than_bilinear():
    h, w = 24, 40
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 3, h, w)
    image = 0.5 + 0.4 * torch.sin(xs * 1.3)  # fine texture: 4.8 px per period
    whole = torch.zeros(1, 2, h, w)
    whole[:, 0] = 2.0
    assert torch.allclose(warp_bicubic(image, whole), warp(image, whole), atol=1e-6)
    half = torch.zeros(1, 2, h, w)
    half[:, 0] = 0.5
    truth = 0.5 + 0.4 * torch.sin((xs + 0.5) * 1.3)
    inner = (..., slice(3, -3))  # away from the replicated edges
    bilinear_error = (warp(image, half) - truth)[inner].abs().mean()
    bicubic_error = (warp_bicubic(image, half) - truth)[inner].abs().mean()
    assert bicubic_error < 0.5 * bilinear_error
