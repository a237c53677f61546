"""Turning dataset rows into model batches: which caption and which 224-frame window a motion gets.

Training draws one random caption and one random window per motion and step; evaluation takes the
first caption and the first window. The draws come from a generator seeded by (seed, epoch, row),
not from a running random state, so a resumed run and a run on more processes draw the same.

The epoch is set by the trainer with `use_epoch`, on purpose not `set_epoch`: accelerate's loaders call
`set_epoch` on their sampler and dataset with their own count of passes, which restarts at 0 in a resumed
run (and in the loader `skip_first_batches` builds), so a resumed run would draw epoch 0's order again.
"""

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from motionpatches.training.augmentation import AugmentationSettings, augment
from motionpatches.training.false_negatives import FALSE_NEGATIVE_MODES, CaptionEmbeddings, caption_key, side_key


class EpochSeededRows(Dataset):
    """A `datasets.Dataset` whose rows carry the seed of their per-epoch random draws."""

    def __init__(self, rows, seed: int):
        self.rows = rows.with_format("numpy", columns=["motion"], output_all_columns=True)
        self.seed = seed
        self.epoch = 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        row = self.rows[int(index)]
        row["draw_seed"] = (self.seed, self.epoch, int(index))
        return row

    def __getitems__(self, indices) -> list[dict]:
        """A batch's rows from one `datasets` read: DataLoader calls this instead of `__getitem__` per row, and
        formatting one batch of Arrow rows costs about a tenth of formatting its rows one by one (the
        per-row call was ~95% of producing a batch of 32). The rows are the ones `__getitem__` gives."""
        indices = [int(index) for index in indices]
        columns = self.rows[indices]
        return [
            {
                **{name: values[position] for name, values in columns.items()},
                "draw_seed": (self.seed, self.epoch, index),
            }
            for position, index in enumerate(indices)
        ]


class EpochPermutationSampler(Sampler):
    """A fresh permutation per epoch, a pure function of (seed, epoch)."""

    def __init__(self, num_rows: int, seed: int):
        self.num_rows = num_rows
        self.seed = seed
        self.epoch = 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return self.num_rows

    def __iter__(self):
        yield from np.random.default_rng([self.seed, self.epoch]).permutation(self.num_rows).tolist()


class MotionTextCollator:
    """Rows -> processor inputs. `train=True`: random caption and window; otherwise first caption, first window.

    In training, `augmentation` (training/augmentation.py) transforms each motion and its caption with the row's
    own generator, drawn after the caption and before the window, and `false_negatives` ("identical" or
    "similar") adds the keys the loss masks false negatives with (`PAIR_KEYS`; "similar" needs
    `caption_embeddings`, a `CaptionEmbeddings` of every caption the batches can hold, mirrored ones included).
    """

    def __init__(
        self,
        processor,
        train: bool,
        augmentation: AugmentationSettings | None = None,
        false_negatives: str = "none",
        caption_embeddings: CaptionEmbeddings | None = None,
        up_axis: int = 1,
        lateral_axis: int = 0,
    ):
        if false_negatives not in FALSE_NEGATIVE_MODES:
            raise ValueError(f"false_negatives must be one of {FALSE_NEGATIVE_MODES}, got {false_negatives!r}")
        if false_negatives == "similar" and caption_embeddings is None:
            raise ValueError("false_negatives='similar' needs caption_embeddings")
        self.processor = processor
        self.train = train
        self.augmentation = augmentation if augmentation is not None and augmentation.enabled else None
        self.false_negatives = false_negatives
        self.caption_embeddings = caption_embeddings
        self.axes = {"up_axis": up_axis, "lateral_axis": lateral_axis}

    def __call__(self, rows):
        if not self.train:
            return self.processor(
                text=[row["captions"][0] for row in rows],
                motions=[row["motion"] for row in rows],
                crop="first",
                return_tensors="pt",
            )
        rngs = [np.random.default_rng(list(row["draw_seed"])) for row in rows]
        captions = [row["captions"][rng.integers(len(row["captions"]))] for row, rng in zip(rows, rngs)]
        motions = [row["motion"] for row in rows]
        if self.augmentation is not None:
            skeleton = self.processor.feature_extractor.skeleton
            pairs = [
                augment(motion, caption, rng, skeleton, self.augmentation, **self.axes)
                for motion, caption, rng in zip(motions, captions, rngs)
            ]
            motions, captions = [motion for motion, _ in pairs], [caption for _, caption in pairs]
        batch = self.processor(text=captions, motions=motions, crop="random", rng=rngs, return_tensors="pt")
        if self.false_negatives != "none":
            batch["caption_keys"] = torch.tensor([caption_key(c) for c in captions], dtype=torch.int64)
            batch["side_keys"] = torch.tensor([side_key(c) for c in captions], dtype=torch.int64)
            if self.false_negatives == "similar":
                batch["caption_embeds"] = torch.from_numpy(self.caption_embeddings(captions))
        return batch
