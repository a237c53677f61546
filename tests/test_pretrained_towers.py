"""Starting from pretrained towers: a tiny timm ViT and a tiny BERT saved locally first, nothing downloaded."""

import pytest
import safetensors.torch
import timm
import torch
from timm.layers import resample_abs_pos_embed
from transformers import BertConfig, BertModel

from motionpatches import MotionTextModel

VIT_SIZE = {"embed_dim": 32, "depth": 2, "num_heads": 2}


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("towers")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, **VIT_SIZE)  # a 14 x 14 image grid
    with torch.no_grad():  # make every weight distinctive, so an unloaded one cannot pass for loaded
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    vit_file = folder / "vit_tiny.safetensors"
    safetensors.torch.save_file(vit.state_dict(), str(vit_file))
    bert = BertModel(
        BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    )
    bert.save_pretrained(folder / "bert")
    model = MotionTextModel.from_motion_text_pretrained(
        "vit_tiny_patch16_224",
        str(folder / "bert"),
        motion_weights_file=str(vit_file),
        motion_config={"backbone_kwargs": VIT_SIZE},
        projection_dim=16,
    )
    return vit, bert, model


def test_vit_weights_loaded_and_pos_embed_resampled_to_motion_grid(towers):
    vit, _, model = towers
    ours = model.motion_model.state_dict()
    image = vit.state_dict()
    assert ours["pos_embed"].shape == (1, 1 + 14 * 5, 32)
    expected_pos = resample_abs_pos_embed(image["pos_embed"], new_size=(14, 5), old_size=(14, 14), num_prefix_tokens=1)
    torch.testing.assert_close(ours["pos_embed"], expected_pos)
    shared = [k for k in image if k in ours and k != "pos_embed"]
    assert "blocks.1.mlp.fc2.weight" in shared and "patch_embed.proj.weight" in shared and "cls_token" in shared
    for key in shared:
        torch.testing.assert_close(ours[key], image[key], rtol=0, atol=0, msg=key)


def test_text_weights_loaded(towers):
    _, bert, model = towers
    ours = model.text_model.state_dict()
    theirs = bert.state_dict()
    # the first-token feature replaces BERT's pooler, so that is the only part not carried over
    assert set(theirs) - set(ours) == {"pooler.dense.weight", "pooler.dense.bias"}
    for key, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[key], rtol=0, atol=0, msg=key)


def test_loaded_weights_drive_the_embeddings(towers):
    vit, bert, model = towers
    model.eval()
    # an independent motion tower: a fresh timm ViT on the motion grid, given the image weights by hand
    independent = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=(224, 80), num_classes=0, global_pool="avg", **VIT_SIZE
    ).eval()
    weights = {k: v for k, v in vit.state_dict().items() if not k.startswith(("head.", "norm."))}
    weights["pos_embed"] = resample_abs_pos_embed(vit.pos_embed.detach(), new_size=(14, 5), num_prefix_tokens=1)
    missing, unexpected = independent.load_state_dict(weights, strict=False)
    assert set(missing) == {"fc_norm.weight", "fc_norm.bias"} and not unexpected
    motion_values = torch.randn(2, 3, 224, 80, generator=torch.Generator().manual_seed(0))
    input_ids = torch.tensor([[2, 7, 9, 11, 3], [2, 8, 3, 0, 0]])
    attention_mask = (input_ids != 0).long()
    with torch.no_grad():
        ours = model.get_motion_features(motion_values=motion_values).pooler_output
        theirs = model.motion_projection(independent(motion_values))
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        text = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        first_token = bert.eval()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        torch.testing.assert_close(text, model.text_projection(first_token), rtol=1e-5, atol=1e-5)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="motion backbone weights file not found: .*nope.safetensors"):
        MotionTextModel.from_motion_text_pretrained(
            "vit_tiny_patch16_224", str(tmp_path), motion_weights_file=str(tmp_path / "nope.safetensors")
        )
