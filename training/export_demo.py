"""Write the embedded demo dataset as a HumanML3D-layout folder (new_joints/, texts/, split files).

    python training/export_demo.py --out demo_data [--seed 0] [--demo_sizes 1200,150,150]

Useful to see the layout the loaders expect, and to run file-based tools (`motionpatches search`,
`training/visualize.py retrieval`) on demo motions. Every file is replaced whole, so an interrupted
export leaves each file either as it was or complete.
"""

import argparse
import os

import numpy as np

from motionpatches.atomic import atomic_path, write_text_atomically
from motionpatches.training.data.common import SPLIT_FILES
from motionpatches.training.data.demo import load_demo_dataset


def export_demo(out: str, seed: int = 0, sizes=(1200, 150, 150)) -> None:
    data = load_demo_dataset(*sizes, seed=seed)
    os.makedirs(os.path.join(out, "new_joints"), exist_ok=True)
    os.makedirs(os.path.join(out, "texts"), exist_ok=True)
    for split, rows in data.items():
        rows = rows.with_format("numpy", columns=["motion"], output_all_columns=True)
        for row in rows:
            with atomic_path(os.path.join(out, "new_joints", f"{row['id']}.npy")) as temporary:
                np.save(temporary, row["motion"])
            captions = "".join(f"{caption}##0.0#0.0\n" for caption in row["captions"])
            write_text_atomically(os.path.join(out, "texts", f"{row['id']}.txt"), captions)
        ids = "".join(f"{motion_id}\n" for motion_id in data[split]["id"])
        write_text_atomically(os.path.join(out, SPLIT_FILES[split]), ids)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo_sizes", default="1200,150,150")
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a file; give a folder (created when missing)")
    export_demo(args.out, args.seed, tuple(int(n) for n in args.demo_sizes.split(",")))


if __name__ == "__main__":
    main()
