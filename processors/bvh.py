"""BVH motion-capture files -> joint positions `(T, J, 3)` in metres with Y up.

The parser is written here and the forward kinematics in `kinematics.py` (no third-party BVH
library), so that a saved checkpoint can read BVH files with nothing but numpy. The body chains of
the rig come from its joint names, in `rig_chains.skeleton_from_bvh`.

Units and up axis are read from the animation, never from the zero-rotation rest pose: exporters
(MotionBuilder, Maya, game rigs) often write a rest pose lying along +X or +Z, or upside down, and put
the real orientation into the rotation channels. What stays true in every frame is the length of each
bone and, in a motion of a person, that the head is above the feet and the feet stand on a floor.

Shipped with saved checkpoints as remote code: imports only numpy, the standard library and siblings.
"""

import math
import os
import re
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

from .kinematics import euler_rotations, forward_kinematics
from .motion_files import FPS_RANGE, MAX_FPS, MIN_FPS, MotionFileError, MotionFileNotFoundError
from .rig_chains import chains_from_joint_names

# (lowest, highest) body size -> factor to metres, where the body size is the length along the bones
# from the lowest point of the legs to the highest point of the upper body (`_body_size`): about 1.1
# times the height of a standing person (toes and the hip offset add a little), 0.95-1.35 times
# between a rig without End Sites and a clip with the hands held up. Each band reads the size as a
# body 1.15-3.5 m long in its unit (from 0.5 m in metres and millimetres, which no other unit comes
# near); CMU units and inches are only 2.2 times apart, so their bands keep to 1.4-2.5 m and
# 1.3-2.8 m. Sizes between bands (a decimetre rig, a child in inches) are
# ambiguous and need an explicit `scale`. The CMU motion-capture database (ASF/AMC, and the BVH
# conversions of it with joints such as `LHipJoint` and `LowerBack`) measures lengths in units of
# 1/0.45 inch = 5.644 cm, so a CMU subject measures about 33 units.
UNIT_BANDS = (
    (0.5, 3.5, 1.0, "metres"),
    (25.0, 45.0, 0.0254 / 0.45, "CMU units (1/0.45 inch)"),
    (50.0, 110.0, 0.0254, "inches"),
    (115.0, 350.0, 0.01, "centimetres"),
    (500.0, 3500.0, 0.001, "millimetres"),
)

# proper rotations taking each possible up axis of a file to +Y (rows: the new x, y, z); Y and Z are
# turned about X, X about Z, so that a Z-up file keeps its X axis and the usual (x, y, z) -> (x, z, -y)
UP_AXIS_ROTATIONS = {
    "y": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "-y": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "z": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "-z": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    "x": ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
    "-x": ((0, 1, 0), (-1, 0, 0), (0, 0, 1)),
}
# detection, on the direction from the feet to the head in every frame (unit vectors) and their mean:
UPRIGHT_MAX_ANGLE = 35.0  # degrees between the mean direction and the up axis
MIN_AGREEMENT = 0.5  # length of the mean direction (1 when every frame points the same way)
# a floor along an axis: the body's lowest point comes back to one level (within this share of the leg
# length above the clip's lowest level) in at least FLOOR_SHARE of the frames
FLOOR_TOLERANCE = 0.1
FLOOR_SHARE = 0.5
# the options that settle what detection cannot, named in every refusal
UP_AXIS_HINT = (
    "Pass up_axis='y' or 'z' to load_bvh (--bvh_up_axis on the command line); 'x' and signed axes such as '-z' "
    "are accepted too"
)
SCALE_HINT = (
    "Pass scale=<metres per file unit> to load_bvh (--bvh_scale on the command line), e.g. scale=0.01 for centimetres"
)

_CHANNELS = {f"{axis}{kind}": (kind, i) for i, axis in enumerate("xyz") for kind in ("position", "rotation")}


@dataclass(frozen=True, eq=False)
class BvhMotion:
    """Joint positions of a BVH file, converted to metres and Y up.

    `joint_names` and `parents` list the real joints in file order (End Sites are not joints; the
    root's parent is -1). `scale` is the factor that was applied to the file's lengths, `up_axis`
    the file's up axis before conversion ("y", "z", or another key of `UP_AXIS_ROTATIONS` when given).
    `fps` is 1 / Frame Time, or the whole number it rounds to when the Frame Time was written with
    too few digits to tell them apart (0.0333333 -> 30).
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
    right-handed). Position channels, on the root or on any joint, replace the OFFSET component of
    the same axis; the other components keep the OFFSET.

    What `up_axis` and `scale` do not give is read from the posed frames of a human rig, whose pelvis,
    legs and upper body are found from the joint names (`rig_chains`) or else from the hierarchy (the
    first joint where it branches; its largest branch is the upper body, the others are legs):

    - up axis: the mean over the clip of the unit direction from the feet to the head must lie within
      35 degrees of +Y or +Z (mean length at least 0.5, so that the frames agree). It is refused when
      the body lies along X or between axes, when the head is below the feet, and when the lowest point
      of the body stays on one level (a floor) along the other axis but not along this one: a body
      lying on a floor.
    - unit: the body size, the length along the bones (median over the frames, so position channels
      may move joints) from the lowest point of the legs to the highest point of the upper body, End
      Sites included, read with `UNIT_BANDS`: 0.5-3.5 metres, 25-45 CMU units (x 0.0254 / 0.45), 50-110
      inches, 115-350 centimetres, 500-3500 millimetres (lower bounds inclusive). A person 1.75 m tall
      measures about 1.9 m.

    What cannot be decided raises `MotionFileError` with the measured numbers and the option to pass.
    `scale` multiplies all lengths; `up_axis` is "x", "y" or "z", optionally signed ("-z" for a file
    whose up points along -Z). The positions are turned to Y up by `UP_AXIS_ROTATIONS`, a proper
    rotation that keeps the rig's handedness: Z up is turned -90 degrees about X, (x, y, z) -> (x, z,
    -y); -Z, -Y likewise about X; +-X about Z. The heading (the rotation about the up axis) is the file's.

    Joints may nest to any depth (the hierarchy is read with an explicit stack, not recursion). The
    frame rate, 1 / Frame Time, must lie in `motion_files.FPS_RANGE` (1 to 1000 fps).

    A malformed file raises `MotionFileError` (a ValueError) naming the file and the line; a missing one
    `MotionFileNotFoundError` (also a FileNotFoundError).
    """
    path = os.fspath(path)
    up = _checked_up_axis(up_axis)
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number or None (detect), got {scale!r}")
    reader = _Reader(path, _read_lines(path))
    joints, end_sites = _parse_hierarchy(reader)
    values, fps = _parse_motion(reader, sum(len(joint.channels) for joint in joints))

    points, point_parents = _forward_kinematics(joints, end_sites, values)
    if up is None or scale is None:
        missing = " and ".join(what for what, known in (("up axis", up), ("length unit", scale)) if known is None)
        body = _find_body(joints, points, point_parents, path, missing)
        up = up or _detect_up_axis(points, body, path)
        scale = scale or _detect_scale(points, body, up, path)

    rotation = np.asarray(UP_AXIS_ROTATIONS[up], dtype=np.float64)
    positions = points[:, : len(joints)] @ (scale * rotation.T)
    return BvhMotion(
        joint_names=tuple(joint.name for joint in joints),
        parents=tuple(joint.parent for joint in joints),
        positions=positions.astype(np.float32),
        fps=fps,
        scale=float(scale),
        up_axis=up,
        path=path,
    )


def _checked_up_axis(up_axis) -> str | None:
    if up_axis is None:
        return None
    key = str(up_axis).strip().lower().removeprefix("+")
    if key not in UP_AXIS_ROTATIONS:
        raise ValueError(f"up_axis must be one of {sorted(UP_AXIS_ROTATIONS)} or None (detect), got {up_axis!r}")
    return key


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise MotionFileNotFoundError(path, f"BVH file not found: {path}") from None
    except OSError as err:
        raise MotionFileError(path, f"cannot read BVH file {path}: {err.strerror or err}") from None


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
    """`(frames, channels)` float64 values and the frame rate, from the lines after 'MOTION'."""
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
    fps = _frame_rate(match.group(1), frame_time)
    _check_frame_rate(reader, line, frame_time, fps)

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
    return _frame_values(reader, rows, row_lines), fps


def _frame_rate(token: str, frame_time: float) -> float:
    """1 / Frame Time, or the whole number of frames per second that the written digits cannot tell
    from it: exporters write 30 fps as 0.0333333, whose inverse 30.00003 would drift from real time."""
    try:
        half_digit = 0.5 * 10.0 ** Decimal(token).as_tuple().exponent
    except (InvalidOperation, TypeError):
        half_digit = 0.0
    whole = round(1.0 / frame_time)
    if whole > 0 and frame_time - half_digit <= 1.0 / whole <= frame_time + half_digit:
        return float(whole)
    return 1.0 / frame_time


def _check_frame_rate(reader: _Reader, line: int, frame_time: float, fps: float) -> None:
    if not MIN_FPS <= fps <= MAX_FPS:
        raise reader.error(
            line,
            f"Frame Time {frame_time:g} s is {fps:.4g} frames per second, outside the accepted "
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


def _forward_kinematics(joints: list[_Joint], end_sites: list, values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """World positions `(T, P, 3)` in file units of the joints then the End Sites, and the parents of all P points."""
    num_frames, num_joints = len(values), len(joints)
    parents = [joint.parent for joint in joints] + [parent for parent, _ in end_sites]
    local_rotations = np.empty((len(parents), num_frames, 3, 3))
    translations = np.empty((len(parents), num_frames, 3))
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
    # End Sites are points that never rotate: their parent's rotation carries them
    local_rotations[num_joints:] = np.eye(3)
    for i, (_, offset) in enumerate(end_sites, start=num_joints):
        translations[i] = offset
    return forward_kinematics(parents, local_rotations, translations), parents


# --- the body that detection measures ---------------------------------------------------------


class _Body(NamedTuple):
    """Points (joints then End Sites, as `_forward_kinematics` orders them) of a human rig."""

    pelvis: int
    legs: np.ndarray  # every point hanging from the pelvis through a leg
    upper: np.ndarray  # every point of the spine's branch: spine, arms, head
    feet: list[int]  # whose mean is where the feet are
    head: list[int]  # whose mean is where the head is
    parents: list[int]
    lengths: np.ndarray  # of the bone from each point's parent to it (median over the frames), 0 at the root
    names: list[str]  # of all points, End Sites as "End Site of <joint>"
    found_by: str  # "joint names" or "hierarchy", for messages


def _find_body(joints: list[_Joint], points: np.ndarray, parents: list[int], path: str, missing: str) -> _Body:
    children = [[] for _ in parents]
    for point, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(point)
    names = [joint.name for joint in joints]
    names += [f"End Site of {names[parent]}" for parent in parents[len(joints) :]]
    body = _body_from_names(names[: len(joints)], parents, children) or _body_from_hierarchy(children)
    if body is None:
        raise MotionFileError(
            path,
            f"BVH file {path}: cannot detect the {missing} of this rig ({len(joints)} joints): its joint names do "
            "not name a head, hands and feet, and its hierarchy never branches into legs and an upper body. "
            f"Give both. {UP_AXIS_HINT}. {SCALE_HINT}",
            "unknown up axis or unit",
        )
    pelvis, legs, upper, feet, head, found_by = body
    return _Body(
        pelvis, np.array(legs), np.array(upper), feet, head, parents, _bone_lengths(points, parents), names, found_by
    )


def _bone_lengths(points: np.ndarray, parents: list[int]) -> np.ndarray:
    """Each bone's median length over the frames: rotations never change a length, and the median
    keeps position channels that move a joint (root motion, stretch) from deciding it."""
    lengths = np.zeros(len(parents))
    linked = np.array([point for point, parent in enumerate(parents) if parent >= 0], dtype=int)
    if len(linked):
        bones = points[:, linked] - points[:, [parents[point] for point in linked]]
        lengths[linked] = np.median(np.linalg.norm(bones, axis=-1), axis=0)
    return lengths


def _body_from_names(joint_names: list[str], parents: list[int], children: list[list[int]]) -> tuple | None:
    """Pelvis, legs and upper body where the joint names say (so helper bones under a floor-level root,
    e.g. IK targets, are never taken for legs); None when the names do not tell."""
    try:
        chains = chains_from_joint_names(joint_names, parents[: len(joint_names)])
    except ValueError:
        return None
    torso, left, right = chains["torso"], chains["left_leg"], chains["right_leg"]
    if min(len(torso), len(left), len(right)) < 2 or left[1] == right[1]:
        return None
    legs = _subtree(left[1], children) + _subtree(right[1], children)
    upper = _subtree(torso[1], children)
    if set(legs) & set(upper):
        return None
    return torso[0], legs, upper, [left[-1], right[-1]], [torso[-1]], "joint names"


def _body_from_hierarchy(children: list[list[int]]) -> tuple | None:
    """Below the first point with several children (the pelvis, also under a floor-level reference root),
    the largest branch is the upper body (spine, arms, head) and the others are legs. The head stands
    in as the chest, where the upper body next branches (arms and neck), for names cannot say more."""
    pelvis = _first_branch(0, children)
    if len(children[pelvis]) < 2:
        return None
    branches = sorted((_subtree(child, children) for child in children[pelvis]), key=len)
    upper, legs = branches[-1], [point for branch in branches[:-1] for point in branch]
    return pelvis, legs, upper, legs, [_first_branch(upper[0], children)], "hierarchy"


def _first_branch(point: int, children: list[list[int]]) -> int:
    while len(children[point]) == 1:
        point = children[point][0]
    return point


def _subtree(point: int, children: list[list[int]]) -> list[int]:
    points, stack = [], [point]
    while stack:
        points.append(stack.pop())
        stack.extend(children[points[-1]])
    return points


# --- up axis ----------------------------------------------------------------------------------


def _detect_up_axis(points: np.ndarray, body: _Body, path: str) -> str:
    """ "y" or "z": where the head is above the feet over the clip, the body standing on a floor."""
    direction = points[:, body.head].mean(axis=1) - points[:, body.feet].mean(axis=1)
    lengths = np.linalg.norm(direction, axis=1, keepdims=True)
    mean = (direction / np.where(lengths > 0, lengths, 1.0)).mean(axis=0)
    agreement = float(np.linalg.norm(mean))
    axis = int(np.argmax(np.abs(mean)))
    angle = math.degrees(math.acos(min(abs(mean[axis]) / agreement, 1.0))) if agreement > 0 else 90.0
    up = "xyz"[axis]

    measured = (
        f"over its {len(points)} frames the unit direction from the feet to the head (found by {body.found_by}) "
        f"averages ({mean[0]:.2f}, {mean[1]:.2f}, {mean[2]:.2f}) in the file's axes"
    )
    if agreement < MIN_AGREEMENT:
        reason = f"its length {agreement:.2f} < {MIN_AGREEMENT}: the body turns through too many orientations"
    elif angle > UPRIGHT_MAX_ANGLE:
        reason = f"{angle:.0f} degrees from the nearest axis, more than {UPRIGHT_MAX_ANGLE:g}: the body is not upright along any axis"
    elif up == "x":
        reason = "the body lies along X (on a floor?), and files stand along Y or Z"
    elif mean[axis] < 0:
        reason = f"the head is below the feet along {up.upper()}: upside down (a handstand, or a file whose up axis is -{up.upper()})"
    else:
        reason = _floor_contradiction(points, body, up)
    if reason:
        raise MotionFileError(
            path,
            f"BVH file {path}: cannot tell the up axis from the animation: {measured}, {reason}. {UP_AXIS_HINT}",
            "unknown up axis",
        )
    return up


def _floor_contradiction(points: np.ndarray, body: _Body, up: str) -> str:
    """Why the floor contact says otherwise, or "" when it agrees: a body lying on a floor (its lowest
    point keeps one level along the other axis) can stand along this axis in every frame."""
    tolerance = FLOOR_TOLERANCE * max(_path_length(body, point) for point in body.legs)
    shares = {axis: _floor_share(points[:, _body_points(body), "xyz".index(axis)], tolerance) for axis in "yz"}
    other = "z" if up == "y" else "y"
    if shares[up] >= FLOOR_SHARE or shares[other] < FLOOR_SHARE:
        return ""
    return (
        f"but the body's lowest point keeps one level (a floor) along {other.upper()} in {shares[other]:.0%} of the "
        f"frames and along {up.upper()} in only {shares[up]:.0%}: a body lying on a floor"
    )


def _floor_share(heights: np.ndarray, tolerance: float) -> float:
    """The share of frames whose lowest point is within `tolerance` of the clip's lowest level."""
    lowest = heights.min(axis=1)
    return float(np.mean(lowest <= np.percentile(lowest, 2) + tolerance))


def _body_points(body: _Body) -> np.ndarray:
    return np.concatenate([[body.pelvis], body.legs, body.upper])


# --- unit -------------------------------------------------------------------------------------


def _detect_scale(points: np.ndarray, body: _Body, up: str, path: str) -> float:
    size, lowest, highest = _body_size(points, body, up)
    for low, high, factor, _ in UNIT_BANDS:
        if low <= size < high:
            return factor
    bands = ", ".join(f"{low:g}-{high:g} {unit}" for low, high, _, unit in UNIT_BANDS)
    raise MotionFileError(
        path,
        f"BVH file {path}: cannot tell the length unit: along its bones the body measures {size:.4g} file units "
        f"from the lowest point of the legs ({body.names[lowest]!r}) to the highest of the upper body "
        f"({body.names[highest]!r}), about 1.1 times a standing height; recognised: {bands}. {SCALE_HINT}",
        "unknown length unit",
    )


def _body_size(points: np.ndarray, body: _Body, up: str) -> tuple[float, int, int]:
    """The length along the bones from the lowest point of the legs to the highest of the upper body
    (highest and lowest on average over the clip, along `up`), and those two points."""
    rotation = np.asarray(UP_AXIS_ROTATIONS[up], dtype=np.float64)
    heights = (points[:, _body_points(body)] @ rotation[1]).mean(axis=0)
    num_legs = len(body.legs)
    lowest = int(body.legs[np.argmin(heights[1 : 1 + num_legs])])
    highest = int(body.upper[np.argmax(heights[1 + num_legs :])])
    return _path_length(body, lowest) + _path_length(body, highest), lowest, highest


def _path_length(body: _Body, point: int) -> float:
    """Length along the bones from the pelvis to a point of the legs or the upper body."""
    total = 0.0
    while point != body.pelvis:
        total += body.lengths[point]
        point = body.parents[point]
    return float(total)
