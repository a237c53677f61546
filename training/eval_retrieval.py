"""Text<->motion retrieval metrics of a saved model on a dataset split.

    python training/eval_retrieval.py --model_name_or_path outputs/motionpatches-demo --dataset_name demo \
        --protocol all --output_file metrics.json --save_embeddings test_embeddings.npz

Protocols: `all` (the paper's: whole split, every motion sharing the exact first caption counts as
correct), and TMR's `tmr-all` (diagonal ground truth), `threshold` (captions whose sentence
embeddings have cosine above 2*0.95-1 also count; `--sentence_encoder`, MiniLM by default),
`dissimilar` (a given id list) and `guo` (batches of 32, averaged).
"""

import argparse
import json

import numpy as np

from motionpatches.retrieval import (
    PROTOCOLS,
    default_sentence_encoder,
    format_metrics_table,
    sentence_embeddings,
)
from motionpatches.training.data.catalog import load_named_dataset
from motionpatches.training.evaluation import embed_split, score_embeddings
from motionpatches.training.skeleton_transfer import processor_for_dataset


def evaluate(
    model, processor, rows, protocol="all", batch_size=128, sentence_encoder=None, threshold=0.95, subset_ids=None
):
    """(metrics, embeddings) of `model` on `rows` under `protocol`; importable for notebooks and tests."""
    embeddings = embed_split(model, processor, rows, batch_size)
    kwargs = {}
    if protocol == "threshold":
        encoder = sentence_encoder or default_sentence_encoder()
        if encoder is None:
            raise ValueError("protocol 'threshold' needs --sentence_encoder (or the demo extra's MiniLM)")
        kwargs.update(sentence_embeds=sentence_embeddings(list(embeddings["captions"]), encoder), threshold=threshold)
    if protocol == "dissimilar":
        if not subset_ids:
            raise ValueError("protocol 'dissimilar' needs --subset_ids (a file with one id per line)")
        kwargs.update(subset_ids=subset_ids)
    return score_embeddings(embeddings, protocol, **kwargs), embeddings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", required=True)
    p.add_argument("--dataset_name", default="demo", help="demo, humanml3d, kit, or a folder in the HumanML3D layout")
    p.add_argument("--dataset_dir")
    p.add_argument("--skeleton", help="preset or JSON skeleton of the dataset (default: the dataset's)")
    p.add_argument("--dataset_fps", type=float)
    p.add_argument("--kit_repeat_frames", action="store_true")
    p.add_argument("--demo_sizes", default="1200,150,150")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo dataset")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--protocol", default="all", choices=PROTOCOLS)
    p.add_argument("--sentence_encoder", help="model folder or Hub id for the threshold protocol")
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--subset_ids", help="file of ids for the dissimilar protocol")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--output_file", help="write the metrics as JSON")
    p.add_argument("--save_embeddings", help="write text_embeds, motion_embeds, captions, ids as .npz")
    args = p.parse_args(argv)

    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(args.model_name_or_path, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(args.model_name_or_path, trust_remote_code=True)
    data, skeleton = load_named_dataset(
        args.dataset_name,
        dataset_dir=args.dataset_dir,
        skeleton=args.skeleton,
        dataset_fps=args.dataset_fps,
        kit_repeat_frames=args.kit_repeat_frames,
        demo_sizes=tuple(int(n) for n in args.demo_sizes.split(",")),
        seed=args.seed,
    )
    processor = processor_for_dataset(processor, skeleton, data)
    subset_ids = None
    if args.subset_ids:
        with open(args.subset_ids, encoding="utf-8") as f:
            subset_ids = [line.strip() for line in f if line.strip()]
    metrics, embeddings = evaluate(
        model,
        processor,
        data[args.split],
        args.protocol,
        args.batch_size,
        args.sentence_encoder,
        args.threshold,
        subset_ids,
    )
    print(f"{args.split} split, {len(data[args.split])} motions, protocol {args.protocol}:")
    print(format_metrics_table(metrics))
    if args.output_file:
        with open(args.output_file, "w") as f:
            json.dump(metrics, f, indent=2)
    if args.save_embeddings:
        np.savez(args.save_embeddings, **embeddings)


if __name__ == "__main__":
    main()
