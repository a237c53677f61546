"""Write the embedded demo dataset as a HumanML3D-layout folder (new_joints/, texts/, split files).

    python training/export_demo.py --out demo_data [--seed 0] [--demo_sizes 1200,150,150]

Useful to see the layout the loaders expect, and to run file-based tools (`motionpatches search`,
`training/visualize.py retrieval`) on demo motions.
"""

import argparse
import os

import numpy as np

from motionpatches.training.data.common import SPLIT_FILES
from motionpatches.training.data.demo import load_demo_dataset


def export_demo(out: str, seed: int = 0, sizes=(1200, 150, 150)) -> None:
    data = load_demo_dataset(*sizes, seed=seed)
    os.makedirs(os.path.join(out, "new_joints"), exist_ok=True)
    os.makedirs(os.path.join(out, "texts"), exist_ok=True)
    for split, rows in data.items():
        rows = rows.with_format("numpy", columns=["motion"], output_all_columns=True)
        for row in rows:
            np.save(os.path.join(out, "new_joints", f"{row['id']}.npy"), row["motion"])
            with open(os.path.join(out, "texts", f"{row['id']}.txt"), "w", encoding="utf-8") as f:
                f.writelines(f"{caption}##0.0#0.0\n" for caption in row["captions"])
        with open(os.path.join(out, SPLIT_FILES[split]), "w", encoding="utf-8") as f:
            f.writelines(f"{motion_id}\n" for motion_id in data[split]["id"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo_sizes", default="1200,150,150")
    args = parser.parse_args(argv)
    export_demo(args.out, args.seed, tuple(int(n) for n in args.demo_sizes.split(",")))


if __name__ == "__main__":
    main()
