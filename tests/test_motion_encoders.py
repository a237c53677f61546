import math

import pytest
import torch

from motionpatches.modeling_motionpatches.motion_encoders import (
    DSTformer,
    JointSequenceTransformer,
    frame_mask_from_lengths,
    sinusoidal_position_encoding,
)

JOINTS, FRAMES, DIM, BATCH = 22, 32, 32, 3
LENGTHS = [20, FRAMES, 9]


def make_encoder(kind: str, dropout: float = 0.1) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "joint_transformer":
        return JointSequenceTransformer(JOINTS, FRAMES, hidden_size=DIM, depth=2, num_heads=4, dropout=dropout)
    return DSTformer(JOINTS, FRAMES, dim=DIM, depth=2, num_heads=4, dropout=dropout)


def token_shape(kind: str, frames: int = FRAMES) -> tuple[int, ...]:
    return (BATCH, frames, DIM) if kind == "joint_transformer" else (BATCH, frames, JOINTS, DIM)


def random_joints(seed: int = 0, frames: int = FRAMES) -> torch.Tensor:
    return torch.randn(BATCH, frames, JOINTS, 3, generator=torch.Generator().manual_seed(seed))


def padded_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random joints with LENGTHS real frames, zero padding after them, and the matching mask."""
    mask = frame_mask_from_lengths(LENGTHS, FRAMES)
    return random_joints(seed) * mask[:, :, None, None], mask


KINDS = ["joint_transformer", "dstformer"]


def test_frame_mask_from_lengths():
    mask = frame_mask_from_lengths(torch.tensor([2, 4]), 4)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, False, False], [True, True, True, True]]
    for bad in ([0, 3], [5], [[1, 2]]):
        with pytest.raises(ValueError):
            frame_mask_from_lengths(bad, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_num_features(kind):
    model = make_encoder(kind).eval()
    assert model.num_features == DIM
    joints, mask = padded_batch()
    tokens = model.forward_features(joints, mask)
    assert tokens.shape == token_shape(kind)
    pooled = model.forward_head(tokens, pre_logits=True, frame_mask=mask)
    assert pooled.shape == (BATCH, model.num_features)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(model(joints, mask), pooled)
    # fewer frames than the encoder was built for are fine; more are refused
    short = random_joints(frames=FRAMES // 2)
    assert model.forward_features(short).shape == token_shape(kind, FRAMES // 2)
    with pytest.raises(ValueError):
        model(random_joints(frames=FRAMES + 1))


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_are_refused(kind):
    model = make_encoder(kind)
    with pytest.raises(ValueError):
        model(torch.randn(BATCH, FRAMES, JOINTS + 1, 3))
    with pytest.raises(ValueError):  # a row with no real frame
        model(random_joints(), torch.zeros(BATCH, FRAMES, dtype=torch.bool))
    with pytest.raises(ValueError):  # an integer mask would be ambiguous
        model(random_joints(), torch.ones(BATCH, FRAMES, dtype=torch.long))


@pytest.mark.parametrize("kind", KINDS)
def test_pooled_output_ignores_padded_frames(kind):
    model = make_encoder(kind).eval()
    joints, mask = padded_batch()
    garbage = joints.clone()
    garbage[~mask] = 100.0 * torch.randn_like(garbage[~mask])
    with torch.no_grad():
        reference = model(joints, mask)
        torch.testing.assert_close(model(garbage, mask), reference, rtol=0, atol=1e-5)
        torch.testing.assert_close(
            model.forward_features(garbage, mask)[mask], model.forward_features(joints, mask)[mask], rtol=0, atol=1e-5
        )
        # padding is zeroed on the way in, so even NaN padding cannot leak through 0-weight attention
        nan_padded = joints.masked_fill(~mask[:, :, None, None], float("nan"))
        torch.testing.assert_close(model(nan_padded, mask), reference, rtol=0, atol=1e-5)
        # the test can fail: without the mask the padding does change the output
        assert not torch.allclose(model(garbage), model(joints), atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_padded_row_matches_the_cropped_clip(kind):
    """A short clip padded to T with its mask gives the same features as the clip alone."""
    model = make_encoder(kind).eval()
    joints, mask = padded_batch()
    with torch.no_grad():
        pooled = model(joints, mask)
        for row, length in enumerate(LENGTHS):
            alone = model(joints[row : row + 1, :length])
            torch.testing.assert_close(alone[0], pooled[row], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_independent(kind):
    model = make_encoder(kind).eval()
    joints, mask = padded_batch()
    other_joints, _ = padded_batch(seed=1)
    other_joints[0] = joints[0]
    other_mask = mask.clone()
    other_mask[1:, 5:] = False
    with torch.no_grad():
        first = model(joints, mask)
        second = model(other_joints, other_mask)
    torch.testing.assert_close(second[0], first[0], rtol=0, atol=1e-5)
    assert not torch.allclose(second[1:], first[1:], atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_eval_is_deterministic_and_train_uses_dropout(kind):
    model = make_encoder(kind).eval()
    joints, mask = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(joints, mask), model(joints, mask), rtol=0, atol=0)
        model.train()
        assert not torch.allclose(model(joints, mask), model(joints, mask))


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_reaches_every_parameter(kind):
    model = make_encoder(kind).train()
    pooled = model(random_joints())
    # a random weighting, not a plain sum: fc_norm's outputs sum to a constant, so `pooled.sum()`
    # has a zero gradient upstream (only float round-off would reach the encoder)
    weights = torch.randn(pooled.shape, generator=torch.Generator().manual_seed(0))
    (pooled * weights).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 1e-6]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("kind", KINDS)
def test_frame_order_matters(kind):
    """Position encodings break permutation invariance: reversing time changes the pooled output."""
    model = make_encoder(kind).eval()
    joints = random_joints()
    with torch.no_grad():
        assert not torch.allclose(model(joints.flip(1)), model(joints), atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_mixes_frames(kind):
    model = make_encoder(kind).eval()
    joints = random_joints()
    changed = joints.clone()
    changed[:, 3] += 1.0
    with torch.no_grad():
        before, after = model.forward_features(joints), model.forward_features(changed)
    other_frames = [t for t in range(FRAMES) if t != 3]
    assert not torch.allclose(after[:, other_frames], before[:, other_frames], atol=1e-4)


def test_dstformer_spatial_attention_mixes_joints():
    model = make_encoder("dstformer").eval()
    joints = random_joints()
    changed = joints.clone()
    changed[:, 3, 5] += 1.0
    with torch.no_grad():
        before, after = model.forward_features(joints), model.forward_features(changed)
    other_joints = [j for j in range(JOINTS) if j != 5]
    # the other joints of the same frame (spatial attention) and the same joint at other frames (temporal)
    assert not torch.allclose(after[:, 3, other_joints], before[:, 3, other_joints], atol=1e-4)
    assert not torch.allclose(after[:, 10, 5], before[:, 10, 5], atol=1e-4)


def test_dstformer_fusion_starts_as_an_even_average():
    model = make_encoder("dstformer")
    block = model.blocks[0]
    alpha = block.fusion(torch.randn(4, 2 * DIM)).softmax(-1)
    torch.testing.assert_close(alpha, torch.full_like(alpha, 0.5))


def test_sinusoidal_position_encoding():
    encoding = sinusoidal_position_encoding(50, 16)
    pos, i = 7, 3
    assert encoding[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    assert encoding[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    model = make_encoder("joint_transformer")
    torch.testing.assert_close(model.pos_encoding, sinusoidal_position_encoding(FRAMES, DIM))
    # fixed: neither learned nor saved
    assert "pos_encoding" not in dict(model.named_parameters())
    assert "pos_encoding" not in model.state_dict()


@pytest.mark.parametrize("kind", KINDS)
def test_init_is_vit_style(kind):
    model = make_encoder(kind)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.out_features > 2:
            assert module.weight.abs().max() <= 0.04 + 1e-6
            assert 0.01 < module.weight.std() < 0.03
            assert (module.bias == 0).all()
