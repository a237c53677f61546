"""BVH motion-capture files -> joint positions `(T, J, 3)` in metres with Y up.

The parser is written here and the forward kinematics in `kinematics.py` (no third-party BVH
library), so that a saved checkpoint can read BVH files with nothing but numpy. The body chains of
the rig come from its joint names, in `rig_chains.skeleton_from_bvh`.

Shipped with saved checkpoints as remote code: imports only numpy, the standard library and siblings.
"""

import math
import os
import re
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .kinematics import euler_rotations, forward_kinematics
from .motion_files import FPS_RANGE, MAX_FPS, MIN_FPS, MotionFileError, MotionFileNotFoundError

# (lowest, highest) rest-pose height along the up axis -> factor to metres; heights outside every
# band are ambiguous and need an explicit `scale`. A human is 1-2 m tall, so each band is read as
# the unit that makes the rig human-sized. The CMU motion-capture database (ASF/AMC, and the BVH
# conversions of it with joints such as `LHipJoint` and `LowerBack`) measures lengths in units of
# 1/0.45 inch = 5.644 cm, so a CMU subject is about 30 units tall.
UNIT_BANDS = (
    (0.5, 3.0, 1.0, "metres"),
    (20.0, 50.0, 0.0254 / 0.45, "CMU units (1/0.45 inch)"),
    (50.0, 300.0, 0.01, "centimetres"),
    (500.0, 3000.0, 0.001, "millimetres"),
)

_CHANNELS = {f"{axis}{kind}": (kind, i) for i, axis in enumerate("xyz") for kind in ("position", "rotation")}


@dataclass(frozen=True, eq=False)
class BvhMotion:
    """Joint positions of a BVH file, converted to metres and Y up.

    `joint_names` and `parents` list the real joints in file order (End Sites are not joints; the
    root's parent is -1). `scale` is the factor that was applied to the file's lengths, `up_axis`
    the file's up axis ("y" or "z") before conversion.
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    positions: np.ndarray
    fps: float
    scale: float
    up_axis: str
    path: str


class _Joint(NamedTuple):
    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: tuple[tuple[str, int], ...]  # (kind, axis) in file order, kind "position" or "rotation"
    first_channel: int  # column of its first channel in a frame line


def load_bvh(path, *, scale: float | None = None, up_axis: str | None = None) -> BvhMotion:
    """Read a BVH file and compute world joint positions for every frame.

    Rotations follow the BVH convention: a joint's local rotation is the product of its per-axis
    rotations in the order its CHANNELS list them (R = R_first @ R_second @ R_third, degrees,
    right-handed). Position channels, usually only on the root, replace the OFFSET component of the
    same axis; the other components keep the OFFSET.

    `scale` multiplies all lengths; without it the unit is read from the rest-pose height (the
    extent of the OFFSET skeleton, End Sites included, along the up axis) using `UNIT_BANDS`:
    0.5-3 metres, 20-50 CMU units (x 0.0254 / 0.45), 50-300 centimetres, 500-3000 millimetres
    (lower bound inclusive). A file in true inches (an adult is about 65-75 in) falls in the
    centimetre band: pass `scale=0.0254`.

    `up_axis` is "y" or "z"; without it, it is the axis (Y or Z) along which the upper body lies
    above the legs in the rest pose. Z-up data is rotated to Y up by -90 degrees about X:
    (x, y, z) -> (x, z, -y), a proper rotation, so the rig keeps its handedness.

    Joints may nest to any depth (the hierarchy is read with an explicit stack, not recursion). The
    frame rate, 1 / Frame Time, must lie in `motion_files.FPS_RANGE` (1 to 1000 fps).

    A malformed file raises `MotionFileError` (a ValueError) naming the file and the line; a missing one
    `MotionFileNotFoundError` (also a FileNotFoundError).
    """
    path = os.fspath(path)
    if up_axis is not None and str(up_axis).lower() not in ("y", "z"):
        raise ValueError(f"up_axis must be 'y', 'z' or None (detect), got {up_axis!r}")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number or None (detect), got {scale!r}")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise MotionFileNotFoundError(path, f"BVH file not found: {path}") from None
    except OSError as err:
        raise MotionFileError(path, f"cannot read BVH file {path}: {err.strerror or err}") from None

    reader = _Reader(path, lines)
    joints, end_sites = _parse_hierarchy(reader)
    num_channels = sum(len(joint.channels) for joint in joints)
    values, frame_time = _parse_motion(reader, num_channels)

    points, point_parents = _rest_pose(joints, end_sites)
    up = str(up_axis).lower() if up_axis is not None else _detect_up_axis(points, point_parents)
    if scale is None:
        scale = _detect_scale(points[:, "xyz".index(up)], path, up)

    positions = _forward_kinematics(joints, values) * scale
    if up == "z":
        positions = np.stack([positions[..., 0], positions[..., 2], -positions[..., 1]], axis=-1)
    return BvhMotion(
        joint_names=tuple(joint.name for joint in joints),
        parents=tuple(joint.parent for joint in joints),
        positions=positions.astype(np.float32),
        fps=1.0 / frame_time,
        scale=float(scale),
        up_axis=up,
        path=path,
    )


class _Reader:
    """Whitespace tokens of the file, one line at a time, so that every error can name its line."""

    def __init__(self, path: str, lines: list[str]):
        self.path = path
        self.lines = lines
        self.next_line = 0  # index of the first line not yet tokenised
        self.pending = deque()  # (line number, token) left on the current line

    def error(self, line: int, message: str) -> MotionFileError:
        return MotionFileError(self.path, f"BVH file {self.path}, line {line}: {message}", "malformed BVH file")

    def take(self, what: str) -> tuple[int, str]:
        while not self.pending and self.next_line < len(self.lines):
            self.next_line += 1
            self.pending.extend((self.next_line, token) for token in self.lines[self.next_line - 1].split())
        if not self.pending:
            raise self.error(max(len(self.lines), 1), f"the file ends where {what} was expected")
        return self.pending.popleft()

    def expect(self, keyword: str, where: str = "") -> int:
        line, token = self.take(repr(keyword))
        if token.lower() != keyword.lower():
            raise self.error(line, f"expected {keyword!r}{where}, got {token!r}")
        return line

    def number(self, what: str) -> float:
        line, token = self.take(what)
        try:
            value = float(token)
        except ValueError:
            raise self.error(line, f"expected a number for {what}, got {token!r}") from None
        if not math.isfinite(value):
            raise self.error(line, f"{what} is {token!r}, expected a finite number")
        return value

    def rest_of_line(self) -> list[str]:
        tokens = [token for _, token in self.pending]
        self.pending.clear()
        return tokens


def _parse_hierarchy(reader: _Reader) -> tuple[list[_Joint], list[tuple[int, np.ndarray]]]:
    """Joints in file order (their channels in frame-line order) and End Sites as (parent, offset)."""
    reader.expect("HIERARCHY", " at the start of the file")
    line = reader.expect("ROOT", " after 'HIERARCHY'")
    joints, end_sites = _parse_joints(reader, line)
    line, token = reader.take("'MOTION'")
    if token.upper() != "MOTION":
        note = " (only one ROOT is supported)" if token.upper() == "ROOT" else ""
        raise reader.error(line, f"expected 'MOTION' after the root joint's closing '}}', got {token!r}{note}")
    extra = reader.rest_of_line()
    if extra:
        raise reader.error(line, f"unexpected {extra[0]!r} after 'MOTION'")
    return joints, end_sites


def _parse_joints(reader: _Reader, root_line: int) -> tuple[list[_Joint], list[tuple[int, np.ndarray]]]:
    """The ROOT's subtree. An explicit stack of open joints instead of recursion: rigs nest arbitrarily deep
    (a 3,000-joint chain would exhaust Python's recursion limit)."""
    joints, end_sites, name_lines = [], [], {}
    open_joints = [_parse_joint_header(reader, root_line, -1, joints, name_lines)]
    while open_joints:
        index = open_joints[-1]
        name = joints[index].name
        line, token = reader.take(f"'JOINT', 'End Site' or '}}' in joint {name!r}")
        if token.upper() == "JOINT":
            open_joints.append(_parse_joint_header(reader, line, index, joints, name_lines))
        elif token.lower() == "end":
            reader.expect("Site", " after 'End'")
            end_sites.append((index, _parse_end_site(reader, name)))
        elif token == "}":
            open_joints.pop()
        else:
            raise reader.error(line, f"expected 'JOINT', 'End Site' or '}}' in joint {name!r}, got {token!r}")
    return joints, end_sites


def _parse_joint_header(reader: _Reader, keyword_line: int, parent: int, joints: list, name_lines: dict) -> int:
    """Reads a joint's name, OFFSET and CHANNELS, appends it to `joints` and returns its index."""
    name_tokens = reader.rest_of_line()
    if name_tokens and name_tokens[-1] == "{":
        reader.pending.append((keyword_line, name_tokens.pop()))
    if not name_tokens:
        raise reader.error(keyword_line, "expected a joint name after 'ROOT' / 'JOINT'")
    name = " ".join(name_tokens)
    if name in name_lines:
        # chains and skeletons find joints by name: a repeated one would silently pick the wrong joint
        raise reader.error(
            keyword_line,
            f"joint name {name!r} is used twice (lines {name_lines[name]} and {keyword_line}); rename one of them",
        )
    name_lines[name] = keyword_line
    reader.expect("{", f" after joint {name!r}")
    reader.expect("OFFSET", f" in joint {name!r}")
    offset = tuple(reader.number(f"the {axis} OFFSET of joint {name!r}") for axis in "xyz")
    reader.expect("CHANNELS", f" after the OFFSET of joint {name!r}")
    channels = _parse_channels(reader, name)
    first_channel = joints[-1].first_channel + len(joints[-1].channels) if joints else 0
    joints.append(_Joint(name, parent, offset, channels, first_channel))
    return len(joints) - 1


def _parse_channels(reader: _Reader, name: str) -> tuple[tuple[str, int], ...]:
    line, token = reader.take(f"the channel count of joint {name!r}")
    # isdigit() alone accepts digits such as '²' that int() then refuses
    if not (token.isascii() and token.isdigit() and int(token) <= 6):
        raise reader.error(line, f"expected the channel count of joint {name!r} (0-6), got {token!r}")
    channels = []
    for _ in range(int(token)):
        line, token = reader.take(f"a channel name of joint {name!r}")
        if token.lower() not in _CHANNELS:
            raise reader.error(
                line,
                f"unknown channel {token!r} in joint {name!r}; expected X/Y/Z followed by 'position' or 'rotation'",
            )
        channels.append(_CHANNELS[token.lower()])
    if len(set(channels)) != len(channels):
        raise reader.error(line, f"joint {name!r} lists a channel twice")
    return tuple(channels)


def _parse_end_site(reader: _Reader, parent_name: str) -> np.ndarray:
    where = f" in the End Site of joint {parent_name!r}"
    reader.expect("{", where)
    reader.expect("OFFSET", where)
    offset = np.array([reader.number(f"the {axis} OFFSET{where}") for axis in "xyz"])
    reader.expect("}", where)
    return offset


def _parse_motion(reader: _Reader, num_channels: int) -> tuple[np.ndarray, float]:
    """`(frames, channels)` float64 values and the frame time, from the lines after 'MOTION'."""
    lines = reader.lines
    numbered = ((i + 1, line.split()) for i, line in enumerate(lines) if i >= reader.next_line and line.strip())
    end_line = max(len(lines), 1)

    line, tokens = next(numbered, (end_line, []))
    text = " ".join(tokens)
    match = re.fullmatch(r"frames\s*:\s*(\d+)", text, re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        raise reader.error(line, f"expected 'Frames: <number of frames, at least 1>', got {text!r}")
    num_frames = int(match.group(1))

    line, tokens = next(numbered, (end_line, []))
    text = " ".join(tokens)
    match = re.fullmatch(r"frame\s+time\s*:\s*(\S+)", text, re.IGNORECASE)
    frame_time = _to_float(match.group(1)) if match else math.nan
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise reader.error(line, f"expected 'Frame Time: <seconds per frame, > 0>', got {text!r}")
    _check_frame_time(reader, line, frame_time)

    rows, row_lines = [], []
    for line, tokens in numbered:
        if len(rows) == num_frames:
            raise reader.error(line, f"more frame lines than the {num_frames} declared by 'Frames:'")
        if len(tokens) != num_channels:
            raise reader.error(
                line, f"frame {len(rows) + 1} has {len(tokens)} values, expected {num_channels} (one per channel)"
            )
        rows.append(tokens)
        row_lines.append(line)
    if len(rows) < num_frames:
        raise reader.error(
            end_line, f"the file ends after {len(rows)} of the {num_frames} frames declared by 'Frames:'"
        )
    return _frame_values(reader, rows, row_lines), frame_time


def _check_frame_time(reader: _Reader, line: int, frame_time: float) -> None:
    if not MIN_FPS <= 1.0 / frame_time <= MAX_FPS:
        raise reader.error(
            line,
            f"Frame Time {frame_time:g} s is {1.0 / frame_time:.4g} frames per second, outside the accepted "
            f"{FPS_RANGE} (Frame Time {1 / MAX_FPS:g} to {1 / MIN_FPS:g} s); write the frame time in seconds",
        )


def _to_float(token: str) -> float:
    """The number a token spells, NaN when it is not one (callers reject non-finite values anyway)."""
    try:
        return float(token)
    except ValueError:
        return math.nan


def _frame_values(reader: _Reader, rows: list[list[str]], row_lines: list[int]) -> np.ndarray:
    """Converts all frame lines at once; only on failure looks for the offending value and line."""
    try:
        values = np.array(rows, dtype=np.float64)
        if np.isfinite(values).all():
            return values
    except ValueError:
        pass
    frame, line, token = next(
        (frame, line, token)
        for frame, (tokens, line) in enumerate(zip(rows, row_lines), start=1)
        for token in tokens
        if not math.isfinite(_to_float(token))
    )
    raise reader.error(line, f"frame {frame} has the value {token!r}, expected a finite number")


def _rest_pose(joints: list[_Joint], end_sites: list) -> tuple[np.ndarray, list[int]]:
    """Rest-pose positions (OFFSETs summed, no rotation) of the joints then the End Sites, and their parents."""
    points = np.zeros((len(joints) + len(end_sites), 3))
    parents = [joint.parent for joint in joints] + [parent for parent, _ in end_sites]
    offsets = [joint.offset for joint in joints] + [offset for _, offset in end_sites]
    for i, (parent, offset) in enumerate(zip(parents, offsets)):
        points[i] = offset if parent < 0 else points[parent] + offset
    return points, parents


def _detect_up_axis(points: np.ndarray, parents: list[int]) -> str:
    """ "y" or "z": the axis along which the upper body is above the legs.

    Below the first joint with several children (the pelvis, also under a floor-level reference
    root), the largest subtree is the upper body (spine, arms, head) and the others are the legs.
    A rig that never branches falls back to its larger extent, Y on a tie.
    """
    children = [[] for _ in parents]
    for i, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(i)
    node = 0
    while len(children[node]) == 1:
        node = children[node][0]
    if len(children[node]) < 2:
        extent = points.max(axis=0) - points.min(axis=0)
        return "y" if extent[1] >= extent[2] else "z"
    subtrees = sorted((_subtree(child, children) for child in children[node]), key=len)
    upper = points[subtrees[-1]].mean(axis=0)
    lower = points[[i for subtree in subtrees[:-1] for i in subtree]].mean(axis=0)
    rise = upper - lower
    return "y" if rise[1] >= rise[2] else "z"


def _subtree(node: int, children: list[list[int]]) -> list[int]:
    nodes, stack = [], [node]
    while stack:
        nodes.append(stack.pop())
        stack.extend(children[nodes[-1]])
    return nodes


def _detect_scale(heights: np.ndarray, path: str, up: str) -> float:
    height = float(heights.max() - heights.min())
    for lowest, highest, factor, _ in UNIT_BANDS:
        if lowest <= height < highest:
            return factor
    bands = ", ".join(f"{lo:g}-{hi:g} {unit}" for lo, hi, _, unit in UNIT_BANDS)
    raise MotionFileError(
        path,
        f"BVH file {path}: cannot tell the length unit from the rest-pose height {height:g} along "
        f"{up.upper()} (recognised: {bands}); pass scale=<factor to metres>, e.g. scale=0.01 for centimetres",
        "unknown length unit",
    )


def _forward_kinematics(joints: list[_Joint], values: np.ndarray) -> np.ndarray:
    """World positions `(T, J, 3)` in file units, from each joint's channels and OFFSET."""
    num_frames = len(values)
    local_rotations = np.empty((len(joints), num_frames, 3, 3))
    translations = np.empty((len(joints), num_frames, 3))
    for j, joint in enumerate(joints):
        translations[j] = joint.offset
        order, rotation_columns = "", []
        for k, (kind, axis) in enumerate(joint.channels):
            column = joint.first_channel + k
            if kind == "position":
                translations[j, :, axis] = values[:, column]
            else:
                order += "xyz"[axis]
                rotation_columns.append(column)
        local_rotations[j] = euler_rotations(values[:, rotation_columns], order)
    return forward_kinematics([joint.parent for joint in joints], local_rotations, translations)
