"""Training rows fetched a batch at a time (`EpochSeededRows.__getitems__`, which DataLoader prefers) are the rows
`__getitem__` gives one by one, so the loader's batches do not change."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from motionpatches import MotionPatchProcessor
from motionpatches.tiny import build_word_tokenizer
from motionpatches.training.batching import EpochPermutationSampler, EpochSeededRows, MotionTextCollator
from motionpatches.training.data.demo import load_demo_dataset


@pytest.fixture(scope="module")
def data():
    return load_demo_dataset(8, 1, 1)["train"]


def test_a_batch_of_rows_equals_the_rows_one_by_one(data):
    rows = EpochSeededRows(data, seed=3)
    rows.use_epoch(2)
    indices = [7, np.int64(0), 5, 4]  # samplers may yield numpy integers
    for single, batched in zip([rows[i] for i in indices], rows.__getitems__(indices), strict=True):
        assert set(single) == set(batched)
        assert batched["draw_seed"] == single["draw_seed"] == (3, 2, int(single["draw_seed"][2]))
        assert batched["motion"].dtype == np.float32 and batched["motion"].flags.c_contiguous
        np.testing.assert_array_equal(batched["motion"], single["motion"])
        assert {k: v for k, v in batched.items() if k != "motion"} == {k: v for k, v in single.items() if k != "motion"}


class _OneRowAtATime(Dataset):
    """The same rows without `__getitems__`: DataLoader then fetches them one by one."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def test_the_loader_gives_the_same_batches_either_way(data):
    rows = EpochSeededRows(data, seed=0)
    tokenizer = build_word_tokenizer(caption for captions in data["captions"] for caption in captions)
    collator = MotionTextCollator(MotionPatchProcessor(tokenizer=tokenizer), train=True)

    def batches(dataset):
        loader = DataLoader(dataset, 4, sampler=EpochPermutationSampler(len(data), 0), collate_fn=collator)
        return list(loader)

    for batched, single in zip(batches(rows), batches(_OneRowAtATime(rows)), strict=True):
        assert set(batched) == set(single)
        for key in batched:
            assert torch.equal(batched[key], single[key]), key
