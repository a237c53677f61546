import numpy as np
import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from motionpatches import MotionTextModel, MotionTextOutput, motion_text_contrastive_loss
from motionpatches.tiny import tiny_config


class MotionTextModelTester:
    """Tiny sizes, transformers-style: a 2-layer ViT and BERT of width 32 on a 64-frame motion window."""

    def __init__(self, batch_size=3, seq_length=7, vocab_size=50, num_frames=64, projection_dim=16, pooling="avg"):
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.vocab_size = vocab_size
        self.num_frames = num_frames
        self.projection_dim = projection_dim
        self.pooling = pooling

    def get_config(self):
        return tiny_config(
            self.vocab_size,
            projection_dim=self.projection_dim,
            motion_config={"num_frames": self.num_frames, "pooling": self.pooling},
        )

    def prepare_inputs(self, seed=0):
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(5, self.vocab_size, (self.batch_size, self.seq_length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, -2:] = 0
        motion_values = torch.randn(self.batch_size, 3, self.num_frames, 80, generator=generator)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "motion_values": motion_values}

    def create_model(self):
        torch.manual_seed(0)
        return MotionTextModel(self.get_config())


@pytest.fixture(params=["avg", "cls"])
def tester(request):
    return MotionTextModelTester(pooling=request.param)


def test_output_shapes_and_types(tester):
    model = tester.create_model().eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        motion = model.get_motion_features(motion_values=inputs["motion_values"])
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        out = model(**inputs, return_loss=True)
    b, p = tester.batch_size, tester.projection_dim
    assert isinstance(motion, BaseModelOutputWithPooling) and isinstance(text, BaseModelOutputWithPooling)
    assert motion.pooler_output.shape == (b, p) and text.pooler_output.shape == (b, p)
    assert motion.last_hidden_state.shape == (b, 1 + (tester.num_frames // 16) * 5, 32)
    assert text.last_hidden_state.shape == (b, tester.seq_length, 32)
    assert isinstance(out, MotionTextOutput)
    assert out.logits_per_motion.shape == out.logits_per_text.shape == (b, b)
    torch.testing.assert_close(out.logits_per_motion, out.logits_per_text.t())
    torch.testing.assert_close(out.motion_embeds.norm(dim=-1), torch.ones(b))
    torch.testing.assert_close(out.motion_embeds, torch.nn.functional.normalize(motion.pooler_output, dim=-1))
    torch.testing.assert_close(out.text_embeds, torch.nn.functional.normalize(text.pooler_output, dim=-1))
    torch.testing.assert_close(out.motion_model_output.pooler_output, motion.pooler_output)
    expected = out.text_embeds @ out.motion_embeds.t() * model.logit_scale.exp()
    torch.testing.assert_close(out.logits_per_text, expected)
    assert out.loss.ndim == 0 and model(**inputs).loss is None


def test_pooling_modes():
    inputs = MotionTextModelTester().prepare_inputs()
    for pooling in ("avg", "cls"):
        model = MotionTextModelTester(pooling=pooling).create_model().eval()
        with torch.no_grad():
            motion = model.get_motion_features(motion_values=inputs["motion_values"])
            tokens = motion.last_hidden_state
            if pooling == "cls":
                pooled = tokens[:, 0]
            else:  # the reference: mean of the patch tokens (class token excluded), then timm's fc_norm
                pooled = model.motion_model.fc_norm(tokens[:, 1:].mean(dim=1))
            torch.testing.assert_close(motion.pooler_output, model.motion_projection(pooled))


def test_loss_is_symmetric_cross_entropy():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(5)
    expected = (
        torch.nn.functional.cross_entropy(logits, targets) + torch.nn.functional.cross_entropy(logits.t(), targets)
    ) / 2
    torch.testing.assert_close(motion_text_contrastive_loss(logits), expected)
    torch.testing.assert_close(motion_text_contrastive_loss(logits.t()), motion_text_contrastive_loss(logits))
    assert motion_text_contrastive_loss(torch.eye(5) * 100) < 1e-6


def test_gradient_reaches_every_parameter():
    tester = MotionTextModelTester()
    model = tester.create_model().train()
    out = model(**tester.prepare_inputs(), return_loss=True)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"
    assert model.logit_scale.grad is not None


def test_forward_is_deterministic_in_eval_and_batch_independent():
    tester = MotionTextModelTester()
    model = tester.create_model().eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        full = model.get_motion_features(motion_values=inputs["motion_values"]).pooler_output
        single = model.get_motion_features(motion_values=inputs["motion_values"][1:2]).pooler_output
    torch.testing.assert_close(full[1:2], single, atol=1e-5, rtol=1e-5)


def test_wrong_motion_shape_is_a_clear_error():
    tester = MotionTextModelTester()
    model = tester.create_model()
    with pytest.raises(
        ValueError, match=r"motion_values has shape \(2, 3, 224, 80\); this model expects \(batch, 3, 64, 80\)"
    ):
        model.get_motion_features(motion_values=torch.zeros(2, 3, 224, 80))
    with pytest.raises(ValueError, match="needs both input_ids and motion_values"):
        model(motion_values=torch.zeros(2, 3, 64, 80))


def test_processor_output_feeds_the_model(tokenizer, sample_motion):
    from motionpatches import MotionPatchProcessor

    processor = MotionPatchProcessor(tokenizer=tokenizer)
    model = MotionTextModel(tiny_config(len(tokenizer))).eval()
    inputs = processor(
        text=["a person walks forward", "someone jumps up"],
        motions=[sample_motion, sample_motion[::-1]],
        return_tensors="pt",
    )
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_text.shape == (2, 2) and np.isfinite(out.logits_per_text.numpy()).all()


def test_two_person_interaction_shares_the_tower_and_concatenates():
    tester = MotionTextModelTester()
    torch.manual_seed(0)
    model = MotionTextModel(tiny_config(tester.vocab_size, motion_config={"num_frames": 64}, num_persons=2)).eval()
    assert model.motion_projection.projection.in_features == 2 * model.motion_model.num_features
    pair = torch.randn(3, 2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model.get_motion_features(motion_values=pair)
        tower = model.motion_model
        pooled = [tower.forward_head(tower.forward_features(pair[:, p]), pre_logits=True) for p in (0, 1)]
        torch.testing.assert_close(out.pooler_output, model.motion_projection(torch.cat(pooled, dim=-1)))
        assert out.last_hidden_state.shape == (3, 2 * (1 + 4 * 5), 32)
        swapped = model.get_motion_features(motion_values=pair.flip(1)).pooler_output
        inputs = tester.prepare_inputs()
        logits = model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], motion_values=pair
        ).logits_per_text
    assert not torch.allclose(swapped, out.pooler_output), "person order is part of the representation"
    assert logits.shape == (3, 3)
    with pytest.raises(ValueError, match=r"expects \(batch, 2, 3, 64, 80\)"):
        model.get_motion_features(motion_values=pair[:, 0])


@pytest.mark.parametrize(
    "encoder, sizes",
    [
        ("joint_transformer", {"hidden_size": 32, "depth": 2, "num_heads": 2}),
        ("dstformer", {"dim": 32, "depth": 1, "num_heads": 2}),
    ],
)
def test_raw_joint_encoders_mask_padding(encoder, sizes, tokenizer, sample_motion, tmp_path):
    from motionpatches import MotionPatchProcessor

    config = tiny_config(
        len(tokenizer),
        motion_config={"encoder": encoder, "num_joints": 22, "num_frames": 224, "backbone_kwargs": sizes},
    )
    model = MotionTextModel(config).eval()
    processor = MotionPatchProcessor(tokenizer=tokenizer, output_format="joints")
    inputs = processor(motions=[sample_motion[:50], sample_motion], return_tensors="pt")
    assert inputs["motion_values"].shape == (2, 224, 22, 3) and inputs["motion_lengths"].tolist() == [50, 170]
    with torch.no_grad():
        padded = model.get_motion_features(**inputs).pooler_output
        garbage = inputs["motion_values"].clone()
        garbage[0, 50:] = 7.0  # whatever sits in the padding must not matter
        noisy = model.get_motion_features(motion_values=garbage, motion_lengths=inputs["motion_lengths"]).pooler_output
        unmasked = model.get_motion_features(motion_values=garbage).pooler_output
    torch.testing.assert_close(noisy, padded, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unmasked[0], padded[0], atol=1e-3)
    # from_pretrained builds modules without data first: fixed buffers must come back too
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        reloaded = MotionTextModel.from_pretrained(tmp_path).eval().get_motion_features(**inputs).pooler_output
    torch.testing.assert_close(reloaded, padded, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"expects \(batch, 224, 22, 3\)"):
        model.get_motion_features(motion_values=torch.zeros(1, 3, 224, 80))
    with pytest.raises(ValueError, match="needs motion_config.num_joints"):
        tiny_config(10, motion_config={"encoder": encoder})
