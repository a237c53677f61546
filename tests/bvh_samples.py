"""BVH text for tests: a small Mixamo-named rig with random joint rotations."""

import numpy as np

# (name, parent, offset in centimetres)
MIXAMO_RIG = [
    ("Hips", None, (0, 95, 0)),
    ("Spine", "Hips", (0, 10, 0)),
    ("Spine1", "Spine", (0, 12, 0)),
    ("Neck", "Spine1", (0, 20, 0)),
    ("Head", "Neck", (0, 10, 0)),
    ("LeftShoulder", "Spine1", (6, 16, 0)),
    ("LeftArm", "LeftShoulder", (12, 0, 0)),
    ("LeftForeArm", "LeftArm", (26, 0, 0)),
    ("LeftHand", "LeftForeArm", (24, 0, 0)),
    ("RightShoulder", "Spine1", (-6, 16, 0)),
    ("RightArm", "RightShoulder", (-12, 0, 0)),
    ("RightForeArm", "RightArm", (-26, 0, 0)),
    ("RightHand", "RightForeArm", (-24, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -5, 0)),
    ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -40, 0)),
    ("LeftToeBase", "LeftFoot", (0, -5, 12)),
    ("RightUpLeg", "Hips", (-9, -5, 0)),
    ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -40, 0)),
    ("RightToeBase", "RightFoot", (0, -5, 12)),
]


def bvh_text(frames: int = 30, fps: float = 30.0, seed: int = 0, rename=None) -> str:
    """A BVH file: root with position + ZXY rotation channels, other joints ZXY rotations, smooth random angles."""
    rename = rename or {}
    children = {}
    for name, parent, _ in MIXAMO_RIG:
        children.setdefault(parent, []).append(name)
    offsets = {name: offset for name, _, offset in MIXAMO_RIG}
    lines = ["HIERARCHY"]

    def write(name, depth):
        pad = "  " * depth
        keyword = "ROOT" if depth == 0 else "JOINT"
        lines.append(f"{pad}{keyword} {rename.get(name, name)}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.4f}' for v in offsets[name])}")
        channels = (
            "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
            if depth == 0
            else "3 Zrotation Xrotation Yrotation"
        )
        lines.append(f"{pad}  CHANNELS {channels}")
        for child in children.get(name, []):
            write(child, depth + 1)
        if name not in children:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 5 0", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    write("Hips", 0)
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    angles = 25 * np.sin(
        2 * np.pi * t / frames * rng.uniform(0.5, 2, (1, 3 * len(MIXAMO_RIG)))
        + rng.uniform(0, 6, (1, 3 * len(MIXAMO_RIG)))
    )
    root = np.concatenate([t * 2.0, np.full((frames, 1), 95.0), t * 1.0], axis=1)
    values = np.concatenate([root, angles], axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"
