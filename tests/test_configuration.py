import math

import pytest
from transformers import AutoConfig, BertConfig, DistilBertConfig

from motionpatches import MotionPatchesConfig, MotionPatchesMotionConfig


def test_defaults_reproduce_the_paper():
    config = MotionPatchesConfig()
    motion = config.motion_config
    assert motion.backbone == "vit_base_patch16_224"
    assert (motion.num_frames, motion.num_parts, motion.patch_size, motion.pooling) == (224, 5, 16, "avg")
    assert motion.image_size == (224, 80)
    assert motion.grid_size == (14, 5)
    assert isinstance(config.text_config, DistilBertConfig)
    assert config.projection_dim == 256
    assert math.isclose(math.exp(config.logit_scale_init_value), 1 / 0.07)


def test_text_config_as_object_or_dict():
    as_object = MotionPatchesConfig(text_config=BertConfig(hidden_size=64, num_attention_heads=2))
    as_dict = MotionPatchesConfig(text_config={"model_type": "bert", "hidden_size": 64, "num_attention_heads": 2})
    assert isinstance(as_object.text_config, BertConfig) and isinstance(as_dict.text_config, BertConfig)
    assert as_object.text_config.hidden_size == as_dict.text_config.hidden_size == 64


def test_dict_round_trip(tmp_path):
    config = MotionPatchesConfig(motion_config={"num_frames": 64, "pooling": "cls"}, projection_dim=32)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MotionPatchesConfig)
    assert isinstance(loaded.motion_config, MotionPatchesMotionConfig)
    assert loaded.motion_config.num_frames == 64 and loaded.motion_config.pooling == "cls"
    assert loaded.projection_dim == 32
    assert loaded.text_config.to_dict() == config.text_config.to_dict()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"motion_config": {"num_frames": 100}}, ["num_frames=100", "patch_size=16"]),
        ({"motion_config": {"num_frames": 224, "patch_size": 15}}, ["num_frames=224", "patch_size=15"]),
        ({"motion_config": {"backbone": "not_a_model"}}, ["not_a_model", "timm"]),
        ({"motion_config": {"backbone": "resnet50"}}, ["resnet50", "Vision Transformer"]),
        ({"motion_config": {"pooling": "max"}}, ["pooling='max'", "avg"]),
        ({"motion_config": {"backbone_kwargs": {"img_size": 32}}}, ["img_size", "num_frames"]),
        ({"text_config": {"hidden_size": 8}}, ["model_type"]),
        ({"projection_dim": 0}, ["projection_dim"]),
        ({"projection_dropout": 1.5}, ["projection_dropout"]),
    ],
)
def test_inconsistent_values_raise_value_error_naming_them(kwargs, words):
    with pytest.raises(ValueError) as info:
        MotionPatchesConfig(**kwargs)
    for word in words:
        assert word in str(info.value)
