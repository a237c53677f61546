"""A procedural motion-language dataset that needs no download: for the README demo and the tests.

Real motion-capture corpora (HumanML3D, KIT-ML) cannot be fetched offline or shipped with the repo, yet
training and retrieval need paired motions and sentences. Here a small forward-kinematics body on the
SMPL-22 skeleton performs parametric actions (walk, wave, kick, ...) with left/right, direction, speed
and repetition variants, and each motion gets three captions written from several templates.

The data are built to be *learnable but not trivial*: a retrieval model has to tell the actions apart
and, harder, left from right (a left-hand wave moves the +X arm, a right-hand wave the -X arm, and only
the words "left" / "right" in the captions say which). Per-sample jitter of body size, amplitude, phase,
timing and starting heading keeps two motions of one class from being identical.

Motions follow the HumanML3D `new_joints` convention: joint positions in metres, Y up, the person
starting at the origin facing (roughly) +Z, SMPL left side towards +X, 20 frames per second, the floor
at y = 0. Everything is a deterministic function of the seed.
"""

from dataclasses import dataclass

import datasets
import numpy as np

__all__ = ["ACTIONS", "generate_demo_motions", "load_demo_dataset"]

_FPS = 20
_MIN_FRAMES, _MAX_FRAMES = 40, 200

# SMPL-22 kinematic tree: _PARENTS[j] is the joint whose rotation carries joint j's bone.
_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
# Joint j and its mirror image across the body's sagittal plane (X -> -X).
_MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)
_FEET = (7, 8, 10, 11)  # ankles and toes: what touches the floor

# Rest pose (standing, arms hanging): offset of each joint from its parent, in metres, for a ~1.7 m
# adult, read off a HumanML3D sample. Right-side joints are exact mirrors of the left ones, so
# mirroring a finished motion yields the same body performing with the other side.
_REST_OFFSETS = np.array(
    [
        [0.000, 0.000, 0.000],  # 0 pelvis (the root; placed by the trajectory)
        [0.065, -0.090, 0.000],  # 1 l_hip
        [-0.065, -0.090, 0.000],  # 2 r_hip
        [0.000, 0.120, -0.030],  # 3 spine1
        [0.000, -0.390, 0.000],  # 4 l_knee
        [0.000, -0.390, 0.000],  # 5 r_knee
        [0.000, 0.135, 0.010],  # 6 spine2
        [0.000, -0.420, -0.020],  # 7 l_ankle
        [0.000, -0.420, -0.020],  # 8 r_ankle
        [0.000, 0.055, 0.020],  # 9 spine3
        [0.000, -0.050, 0.130],  # 10 l_foot
        [0.000, -0.050, 0.130],  # 11 r_foot
        [0.000, 0.210, -0.020],  # 12 neck
        [0.070, 0.120, -0.010],  # 13 l_collar
        [-0.070, 0.120, -0.010],  # 14 r_collar
        [0.000, 0.090, 0.050],  # 15 head
        [0.120, -0.020, -0.010],  # 16 l_shoulder
        [-0.120, -0.020, -0.010],  # 17 r_shoulder
        [0.000, -0.260, 0.000],  # 18 l_elbow
        [0.000, -0.260, 0.000],  # 19 r_elbow
        [0.000, -0.250, 0.000],  # 20 l_wrist
        [0.000, -0.250, 0.000],  # 21 r_wrist
    ]
)
_LEG_BONES, _ARM_BONES = (4, 5, 7, 8, 10, 11), (16, 17, 18, 19, 20, 21)
_LEG = {"left": (1, 4, 7), "right": (2, 5, 8)}  # hip, knee, ankle: each rotates the next bone
_ARM = {"left": (16, 18), "right": (17, 19)}  # shoulder, elbow
_SIGN = {"left": 1.0, "right": -1.0}  # sideways rotations point towards +X for the left limbs
_OTHER_SIDE = {"left": "right", "right": "left"}
_SPEEDS = ("slow", "normal", "fast")
_TEMPO = {"slow": 0.7, "normal": 1.0, "fast": 1.4}  # cadence factor (and, for locomotion, distance)


# ---------------------------------------------------------------------------------------------------
# Body and forward kinematics


@dataclass(frozen=True)
class _Body:
    offsets: np.ndarray  # (22, 3) bone offsets in metres
    leg_length: float  # hip to ankle, sets how far a step carries the body


def _random_body(rng: np.random.Generator) -> _Body:
    """Overall size ±5% and slightly different leg/arm proportions, the same on both sides."""
    offsets = _REST_OFFSETS * rng.uniform(0.95, 1.05)
    offsets[list(_LEG_BONES)] *= rng.uniform(0.97, 1.03)
    offsets[list(_ARM_BONES)] *= rng.uniform(0.97, 1.03)
    leg_length = float(np.linalg.norm(offsets[4]) + np.linalg.norm(offsets[7]))
    return _Body(offsets, leg_length)


def _rotation_matrices(degrees: np.ndarray) -> np.ndarray:
    """(..., 3) pitch/yaw/roll in degrees -> (..., 3, 3) rotations R_y(yaw) @ R_x(pitch) @ R_z(roll).

    Roll first keeps a sideways-raised arm's yaw a pure swing to the front; positive pitch tips +Y
    towards +Z, positive yaw turns +Z towards +X (to the person's left), positive roll turns -Y
    towards +X (a hanging left limb moves outwards).
    """
    pitch, yaw, roll = np.moveaxis(np.radians(degrees), -1, 0)
    zero, one = np.zeros_like(pitch), np.ones_like(pitch)
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], axis=-1).reshape(*pitch.shape, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], axis=-1).reshape(*pitch.shape, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], axis=-1).reshape(*pitch.shape, 3, 3)
    return ry @ rx @ rz


def _forward_kinematics(offsets: np.ndarray, joint_degrees: np.ndarray, heading_degrees: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) with the pelvis at the origin, all frames at once.

    `joint_degrees` (22, T, 3) are local rotations (joint j's rotates the bones of its children);
    `heading_degrees` (T,) turns the whole body about the vertical axis.
    """
    frames = joint_degrees.shape[1]
    local = _rotation_matrices(joint_degrees)
    heading = _rotation_matrices(np.stack([np.zeros(frames), heading_degrees, np.zeros(frames)], axis=-1))
    world = [heading @ local[0]]
    positions = np.zeros((frames, len(_PARENTS), 3))
    for joint in range(1, len(_PARENTS)):
        parent = _PARENTS[joint]
        positions[:, joint] = positions[:, parent] + world[parent] @ offsets[joint]
        world.append(world[parent] @ local[joint])
    return positions


# ---------------------------------------------------------------------------------------------------
# Time profiles


def _ease(x):
    """Smoothstep on [0, 1], clamped: starts and stops with zero velocity, so poses never jerk."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _keyframes(x, knots, values):
    """Eased interpolation through (knot, value) pairs, holding the end values outside."""
    knots, values = np.asarray(knots, float), np.asarray(values, float)
    segment = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    span = knots[segment + 1] - knots[segment]
    return values[segment] + (values[segment + 1] - values[segment]) * _ease((x - knots[segment]) / span)


class _Performance:
    """One take of an action before it is placed in the world: timing, joint angles and root motion.

    Builders add joint angles (degrees) on top of a relaxed standing pose with a little idle sway, set
    the heading, the per-frame root displacement for locomotion, the height of any jump, and which
    foot joints must stay put on the floor while the body moves over them.
    """

    def __init__(self, rng: np.random.Generator, active_seconds: float):
        self.start = rng.uniform(0.2, 0.7)  # quiet standing before the action begins
        self.end = self.start + active_seconds
        natural_frames = round((self.end + rng.uniform(0.2, 0.7)) * _FPS)
        frames = int(np.clip(natural_frames, _MIN_FRAMES, _MAX_FRAMES))  # short takes stand still longer
        self.t = np.arange(frames) / _FPS
        self.amplitude = rng.uniform(0.85, 1.15)
        self.angles = np.zeros((len(_PARENTS), frames, 3))
        self.heading = np.full(frames, rng.uniform(-10.0, 10.0))  # starts facing +Z, give or take
        self.steps = np.zeros((frames, 2))  # root displacement per frame in the body frame: (left, forward)
        self.airborne = np.zeros(frames)
        self.anchor: tuple[int, ...] = _FEET
        self.flat_feet = {"left": True, "right": True}
        for side in ("left", "right"):
            self.arm(side, abduct=6 + self._sway(rng, 2), elbow=10 + self._sway(rng, 4))
            self.leg(side, knee=3)
        self.spine(lean=2 + self._sway(rng, 1.5), bend=self._sway(rng, 1.5))
        self.angles[12, :, 0] += self._sway(rng, 3)

    def _sway(self, rng, amplitude):
        """Slow, smooth wandering (two sines of random frequency and phase) so no pose is frozen."""
        frequency, phase = rng.uniform(0.1, 0.5, 2), rng.uniform(0, 2 * np.pi, 2)
        return amplitude * np.sin(2 * np.pi * frequency[:, None] * self.t + phase[:, None]).mean(axis=0)

    def envelope(self, start, end, rise):
        """0 before `start`, eases to 1 over `rise` seconds, back to 0 by `end`."""
        return _ease((self.t - start) / rise) * _ease((end - self.t) / rise)

    def cycles(self, start, period, repetitions):
        """Phase in [0, 1) within each repetition, 0 outside them (profiles vanish at phase 0 and 1)."""
        elapsed = (self.t - start) / period
        return np.where((elapsed >= 0) & (elapsed < repetitions), elapsed % 1.0, 0.0)

    def leg(self, side, flex=0.0, knee=0.0, abduct=0.0):
        """Hip flexion swings the thigh forward, knee flexion folds the shin back, abduction is outwards."""
        hip, knee_joint, _ = _LEG[side]
        self.angles[hip, :, 0] -= flex
        self.angles[hip, :, 2] += _SIGN[side] * abduct
        self.angles[knee_joint, :, 0] += knee

    def arm(self, side, forward=0.0, abduct=0.0, inward=0.0, elbow=0.0, forearm_out=0.0):
        """Shoulder: raise forward / sideways, swing towards the midline; elbow: bend, or open sideways."""
        shoulder, elbow_joint = _ARM[side]
        self.angles[shoulder, :, 0] -= forward
        self.angles[shoulder, :, 1] -= _SIGN[side] * inward
        self.angles[shoulder, :, 2] += _SIGN[side] * abduct
        self.angles[elbow_joint, :, 0] -= elbow
        self.angles[elbow_joint, :, 2] += _SIGN[side] * forearm_out

    def spine(self, lean=0.0, twist=0.0, bend=0.0):
        """Forward lean, twist to the left and side bend to the left, spread over the three spine joints."""
        share = np.stack([np.broadcast_to(angle, self.t.shape) for angle in (lean, twist, bend)], axis=-1) / 3
        for joint in (3, 6, 9):
            self.angles[joint] += share

    def flatten_feet(self):
        """Counter-rotate the ankles so soles stay level, as they do on the floor (not for a kicking foot)."""
        for side, (hip, knee, ankle) in _LEG.items():
            if self.flat_feet[side]:
                self.angles[ankle, :, 0] -= self.angles[hip, :, 0] + self.angles[knee, :, 0]
                self.angles[ankle, :, 2] -= self.angles[hip, :, 2]


def _place(performance: _Performance, body: _Body) -> np.ndarray:
    """World positions (T, 22, 3): FK, then the root moved so feet meet the floor and do not skate."""
    performance.flatten_feet()
    posed = _forward_kinematics(body.offsets, performance.angles, performance.heading)
    heading = np.radians(performance.heading)
    left, forward = performance.steps.T
    # body frame -> world: forward is (sin h, cos h) in (x, z), left is (cos h, -sin h)
    world_steps = np.stack(
        [forward * np.sin(heading) + left * np.cos(heading), forward * np.cos(heading) - left * np.sin(heading)],
        axis=-1,
    )
    root_xz = np.cumsum(world_steps, axis=0) - world_steps[0]
    if performance.anchor:
        anchor_xz = posed[:, list(performance.anchor)][:, :, [0, 2]].mean(axis=1)
        root_xz -= anchor_xz - anchor_xz[0]
    root_y = performance.airborne - posed[:, list(_FEET), 1].min(axis=1)
    return posed + np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], axis=-1)[:, None, :]


def _mirror(motion: np.ndarray) -> np.ndarray:
    """The same motion performed with the other side of the body (reflected across x = 0)."""
    return motion[:, list(_MIRROR)] * np.array([-1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------------------------------
# Actions. Each builder performs the left-handed / left-turning version; `_mirror` makes the right one.


def _walk(rng, variant, body):
    tempo = _TEMPO[variant["speed"]] * rng.uniform(0.92, 1.08)
    direction = variant["direction"]
    p = _Performance(rng, rng.uniform(6.0, 8.0) if direction == "circle" else rng.uniform(3.0, 8.0))
    moving = p.envelope(p.start, p.end, rise=0.6)
    cadence = 1.8 * tempo  # steps per second
    swing = 25.0 * (0.6 + 0.4 * tempo) * p.amplitude * (0.8 if direction == "backward" else 1.0)
    phase = np.pi * cadence * (p.t - p.start) + rng.choice([0.0, np.pi]) + rng.uniform(-0.3, 0.3)
    thigh = swing * moving * np.sin(phase)
    # the knee folds while its leg swings through, which is forwards or, walking backwards, backwards
    swinging = np.cos(phase) * (-1.0 if direction == "backward" else 1.0)
    knee_fold = 50.0 * (0.7 + 0.3 * tempo)
    p.leg("left", flex=thigh, knee=moving * (5 + knee_fold * np.maximum(swinging, 0) ** 2))
    p.leg("right", flex=-thigh, knee=moving * (5 + knee_fold * np.maximum(-swinging, 0) ** 2))
    p.arm("left", forward=-0.7 * thigh, elbow=10 * moving)
    p.arm("right", forward=0.7 * thigh, elbow=10 * moving)
    p.spine(twist=-0.2 * thigh)
    speed = 2 * body.leg_length * np.sin(np.radians(swing)) * cadence * moving
    p.steps[:, 1] = (-speed if direction == "backward" else speed) / _FPS
    if direction == "left":
        turn_start = p.start + rng.uniform(0.3, 1.0)
        p.heading += rng.uniform(75, 105) * _ease((p.t - turn_start) / rng.uniform(1.0, 1.6))
    elif direction == "circle":
        p.heading += rng.uniform(330, 390) * np.cumsum(moving) / moving.sum()
    p.anchor = ()
    return p


def _run(rng, variant, body):
    tempo = {"slow": 0.85, "normal": 1.0, "fast": 1.15}[variant["speed"]] * rng.uniform(0.95, 1.05)
    circle = variant["direction"] == "circle"
    p = _Performance(rng, rng.uniform(5.0, 7.5) if circle else rng.uniform(2.5, 6.0))
    moving = p.envelope(p.start, p.end, rise=0.5)
    cadence = 2.8 * tempo
    swing = 38.0 * tempo * p.amplitude
    phase = np.pi * cadence * (p.t - p.start) + rng.choice([0.0, np.pi]) + rng.uniform(-0.3, 0.3)
    thigh = swing * moving * np.sin(phase)
    fold = 90.0 * tempo
    p.leg("left", flex=thigh, knee=moving * (20 + fold * np.maximum(np.cos(phase), 0) ** 2))
    p.leg("right", flex=-thigh, knee=moving * (20 + fold * np.maximum(-np.cos(phase), 0) ** 2))
    p.arm("left", forward=-0.8 * thigh, elbow=85 * moving, inward=10 * moving)
    p.arm("right", forward=0.8 * thigh, elbow=85 * moving, inward=10 * moving)
    p.spine(lean=10 * moving, twist=-0.2 * thigh)
    p.airborne = 0.05 * tempo * moving * np.maximum(np.sin(2 * phase), 0)
    p.steps[:, 1] = 2 * body.leg_length * np.sin(np.radians(swing)) * cadence * 1.1 * moving / _FPS
    if circle:
        p.heading += rng.uniform(330, 390) * np.cumsum(moving) / moving.sum()
    p.anchor = ()
    return p


def _jump(rng, variant, body):
    repetitions, period = variant["repetitions"], 1.1 * rng.uniform(0.9, 1.1)
    p = _Performance(rng, repetitions * period)
    phase = p.cycles(p.start, period, repetitions)
    crouch = _keyframes(phase, [0, 0.3, 0.42, 0.72, 0.84, 1], [0, 1, 0, 0.15, 0.6, 0]) * p.amplitude
    for side in ("left", "right"):
        p.leg(side, flex=65 * crouch, knee=105 * crouch)
        # arms swing back while crouching and up through the take-off
        p.arm(side, forward=_keyframes(phase, [0, 0.3, 0.5, 0.72, 0.9, 1], [0, -40, 150, 120, 10, 0]))
    p.spine(lean=35 * crouch)
    flight = np.clip((phase - 0.42) / 0.3, 0, 1)
    p.airborne = rng.uniform(0.2, 0.35) * 4 * flight * (1 - flight)
    if variant["direction"] == "forward":
        p.steps[:, 1] = rng.uniform(0.5, 0.9) * np.diff(flight, prepend=0.0).clip(min=0)
    return p


def _squat(rng, variant, body):
    repetitions = variant["repetitions"]
    period = {"slow": 2.4, "normal": 1.8, "fast": 1.2}[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = _Performance(rng, repetitions * period)
    depth = np.sin(np.pi * p.cycles(p.start, period, repetitions)) ** 2 * p.amplitude
    for side in ("left", "right"):
        p.leg(side, flex=95 * depth, knee=115 * depth)
        p.arm(side, forward=80 * depth)
    p.spine(lean=40 * depth)
    return p


def _wave(rng, variant, body):
    p = _Performance(rng, rng.uniform(2.5, 4.5))
    raised = p.envelope(p.start, p.end, rise=0.5)
    frequency = 2.0 * _TEMPO[variant["speed"]] * rng.uniform(0.9, 1.1)
    wag = 25 * p.amplitude * np.sin(2 * np.pi * frequency * (p.t - p.start) + rng.uniform(0, 2 * np.pi))
    # upper arm out to the side and a little forward, forearm up, swinging side to side
    p.arm("left", abduct=rng.uniform(90, 110) * raised, inward=20 * raised, forearm_out=(80 + wag) * raised)
    return p


def _kick(rng, variant, body):
    repetitions, period = variant["repetitions"], 1.3 * rng.uniform(0.9, 1.1)
    p = _Performance(rng, repetitions * period)
    phase = p.cycles(p.start, period, repetitions)
    lift = np.sin(np.pi * phase)
    # the knee chambers on the way up and down and straightens at the top: a snap kick
    p.leg("left", flex=75 * p.amplitude * lift, knee=80 * np.sin(2 * np.pi * phase) ** 2)
    p.leg("right", knee=10 * lift)
    for side in ("left", "right"):
        p.arm(side, abduct=20 * lift, elbow=50 * lift)
    p.spine(lean=-12 * lift)
    p.flat_feet["left"] = False
    p.anchor = (8, 11)  # the right ankle and toes carry the weight
    return p


def _punch(rng, variant, body):
    repetitions, period = variant["repetitions"], 0.8 * rng.uniform(0.85, 1.15)
    p = _Performance(rng, 1.2 + repetitions * period)
    guard = p.envelope(p.start, p.end, rise=0.5)
    extension = _keyframes(p.cycles(p.start + 0.6, period, repetitions), [0, 0.3, 0.55, 1], [0, 1, 1, 0])
    extension *= min(p.amplitude, 1.0)
    p.arm("left", forward=guard * (30 + 55 * extension), abduct=guard * (15 - 10 * extension),
          inward=guard * (20 - 10 * extension), elbow=guard * (120 - 115 * extension))
    p.arm("right", forward=30 * guard, abduct=15 * guard, inward=20 * guard, elbow=120 * guard)
    p.spine(twist=-20 * extension)  # the left shoulder drives forward
    for side in ("left", "right"):
        p.leg(side, knee=10 * guard)
    return p


def _turn(rng, variant, body):
    angle = variant["angle"]
    duration = angle / 90 * {"slow": 2.2, "normal": 1.4, "fast": 0.9}[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = _Performance(rng, duration)
    p.heading += angle * rng.uniform(0.92, 1.08) * _ease((p.t - p.start) / duration)
    stepping = np.sin(np.pi * angle / 45 * np.clip((p.t - p.start) / duration, 0, 1))
    p.leg("left", flex=15 * np.maximum(stepping, 0), knee=30 * np.maximum(stepping, 0))
    p.leg("right", flex=15 * np.maximum(-stepping, 0), knee=30 * np.maximum(-stepping, 0))
    return p


def _sit_down(rng, variant, body):
    descent = {"slow": 2.6, "normal": 1.8, "fast": 1.2}[variant["speed"]] * rng.uniform(0.9, 1.1)
    seated = rng.uniform(1.0, 2.5)
    p = _Performance(rng, descent + seated + (descent if variant["stand_up"] else 0.0))
    knots = [p.start, p.start + descent, p.start + descent + seated, p.start + 2 * descent + seated]
    sitting = _keyframes(p.t, knots, [0, 1, 1, 0 if variant["stand_up"] else 1])
    for side in ("left", "right"):
        p.leg(side, flex=90 * sitting, knee=95 * sitting)
        p.arm(side, forward=20 * sitting, elbow=45 * sitting)
    p.spine(lean=40 * p.amplitude * 4 * sitting * (1 - sitting) + 15 * sitting)  # lean in to get over the feet
    return p


def _clap(rng, variant, body):
    claps = variant["repetitions"]
    frequency = 2.0 * _TEMPO[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = _Performance(rng, 1.0 + claps / frequency)
    raised = p.envelope(p.start, p.end, rise=0.5)
    clapping = (p.t >= p.start + 0.5) & (p.t < p.start + 0.5 + claps / frequency)
    apart = np.where(clapping, 0.5 + 0.5 * np.cos(2 * np.pi * frequency * (p.t - p.start - 0.5)), 1.0)
    for side in ("left", "right"):
        p.arm(side, forward=45 * raised, inward=(35 - 30 * apart * p.amplitude) * raised, elbow=55 * raised)
    return p


def _raise_arms(rng, variant, body):
    repetitions, period = variant["repetitions"], rng.uniform(2.5, 3.5)
    p = _Performance(rng, repetitions * period)
    up = _keyframes(p.cycles(p.start, period, repetitions), [0, 0.3, 0.7, 0.95, 1], [0, 1, 1, 0, 0])
    for side in ("left", "right") if variant["side"] == "both" else ("left",):
        p.arm(side, forward=rng.uniform(155, 175) * up, abduct=10 * up)
    return p


def _jumping_jacks(rng, variant, body):
    repetitions = variant["repetitions"]
    period = {"slow": 1.3, "normal": 1.0, "fast": 0.75}[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = _Performance(rng, repetitions * period)
    phase = p.cycles(p.start, period, repetitions)
    spread = np.sin(np.pi * phase) ** 2
    for side in ("left", "right"):
        p.arm(side, abduct=160 * spread)
        p.leg(side, abduct=15 * p.amplitude * spread, knee=10 * np.abs(np.sin(2 * np.pi * phase)))
    p.airborne = 0.07 * np.abs(np.sin(2 * np.pi * phase))  # a hop between the open and closed stances
    return p


def _side_step(rng, variant, body):
    steps = variant["repetitions"]
    period = {"slow": 1.4, "normal": 1.0, "fast": 0.7}[variant["speed"]] * rng.uniform(0.9, 1.1)
    width = rng.uniform(0.28, 0.42)
    p = _Performance(rng, steps * period)
    progress = np.clip((p.t - p.start) / period, 0, steps)
    done, within = np.floor(progress), progress % 1.0
    # the left foot leads over the first half of each step, the right foot closes over the second
    left_foot = width * (done + _ease(2 * within))
    right_foot = width * (done + _ease(2 * within - 1))
    spread = np.degrees(np.arcsin((left_foot - right_foot) / 2 / body.leg_length))
    for side, lift in (("left", np.sin(np.pi * np.clip(2 * within, 0, 1))),
                       ("right", np.sin(np.pi * np.clip(2 * within - 1, 0, 1)))):
        p.leg(side, abduct=spread, flex=15 * lift, knee=30 * lift)
    p.steps[:, 0] = np.diff((left_foot + right_foot) / 2, prepend=0.0)
    p.anchor = ()
    return p


def _look_around(rng, variant, body):
    repetitions, period = variant["repetitions"], rng.uniform(2.5, 3.5)
    p = _Performance(rng, repetitions * period)
    reach = rng.uniform(50, 70) * p.amplitude
    turn = _keyframes(p.cycles(p.start, period, repetitions), [0, 0.2, 0.4, 0.6, 0.8, 1], [0, 1, 1, -1, -1, 0])
    p.angles[12, :, 1] += reach * turn  # the neck turns the head, first to the left
    p.spine(twist=0.35 * reach * turn)
    return p


# ---------------------------------------------------------------------------------------------------
# Variants and captions

_BUILDERS = {
    "walk": _walk,
    "run": _run,
    "jump": _jump,
    "squat": _squat,
    "wave": _wave,
    "kick": _kick,
    "punch": _punch,
    "turn": _turn,
    "sit_down": _sit_down,
    "clap": _clap,
    "raise_arms": _raise_arms,
    "jumping_jacks": _jumping_jacks,
    "side_step": _side_step,
    "look_around": _look_around,
}
ACTIONS = tuple(_BUILDERS)

_SIDES = ("left", "right")
# Repetition counts are capped so that every take fits in _MAX_FRAMES at its slowest tempo.
_VARIANT_OPTIONS = {
    "walk": {"direction": ("forward", "backward", "left", "right", "circle"), "speed": _SPEEDS},
    "run": {"direction": ("forward", "circle"), "speed": _SPEEDS},
    "jump": {"direction": ("in_place", "forward"), "repetitions": (1, 2, 3)},
    "squat": {"repetitions": (1, 2, 3), "speed": _SPEEDS},
    "wave": {"side": _SIDES, "speed": _SPEEDS},
    "kick": {"side": _SIDES, "repetitions": (1, 2, 3)},
    "punch": {"side": _SIDES, "repetitions": (1, 2, 3, 4)},
    "turn": {"side": _SIDES, "angle": (90, 180), "speed": _SPEEDS},
    "sit_down": {"stand_up": (False, True), "speed": _SPEEDS},
    "clap": {"repetitions": (3, 4, 5, 6), "speed": _SPEEDS},
    "raise_arms": {"side": ("left", "right", "both"), "repetitions": (1, 2)},
    "jumping_jacks": {"repetitions": (2, 3, 4, 5), "speed": _SPEEDS},
    "side_step": {"side": _SIDES, "repetitions": (2, 3, 4), "speed": _SPEEDS},
    "look_around": {"side": _SIDES, "repetitions": (1, 2)},
}

_SUBJECTS = (
    ("a person", "their"),
    ("someone", "their"),
    ("a man", "his"),
    ("a woman", "her"),
    ("the figure", "their"),
    ("the person", "their"),
)
_ADVERBS = {"slow": ("slowly", "at a slow pace"), "normal": ("",), "fast": ("quickly", "fast", "at a fast pace")}
_ADVERBS_BEFORE_VERB = {"slow": ("slowly",), "normal": ("",), "fast": ("quickly",)}
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_TIMES = {1: "", 2: "twice", **{n: f"{word} times" for n, word in _NUMBERS.items() if n > 2}}
_COUNTED = {
    "jump": ("jump", "jumps"),
    "squat": ("squat", "squats"),
    "kick": ("kick", "kicks"),
    "punch": ("punch", "punches"),
    "jumping_jacks": ("jumping jack", "jumping jacks"),
    "side_step": ("side step", "side steps"),
}
_CIRCLE = ("in a circle to the {side}", "in a circle, turning {side}", "around in a circle to the {side}")
_SIDEWAYS = ("to the {side}", "and turns to the {side}", "towards {pos} {side}")
_DIRECTIONS = {
    "walk": {
        "forward": ("forward", "forwards", "straight ahead"),
        "backward": ("backwards", "backward"),
        "left": _SIDEWAYS,
        "right": _SIDEWAYS,
        "circle": _CIRCLE,
    },
    "run": {"forward": ("forward", "straight ahead", "ahead"), "circle": _CIRCLE},
    "jump": {"in_place": ("in place", "on the spot"), "forward": ("forward", "forwards", "ahead")},
    "turn": {
        90: ("to the {side}", "{side}", "to {pos} {side}"),
        180: ("around to the {side}", "around over {pos} {side} shoulder", "180 degrees to the {side}"),
    },
}
_TEMPLATES = {
    "walk": (
        "{subj} walks {dir} {adv}",
        "{subj} {adv_pre} walks {dir}",
        "{subj} takes a few steps {dir} {adv}",
        "{subj} is walking {dir} {adv}",
    ),
    "run": (
        "{subj} runs {dir} {adv}",
        "{subj} {adv_pre} runs {dir}",
        "{subj} is running {dir} {adv}",
        "{subj} runs {adv} {dir}",
    ),
    "jump": (
        "{subj} jumps {dir} {times}",
        "{subj} does {count} {dir}",
        "{subj} bends {pos} knees and jumps {dir} {times}",
        "{subj} hops {dir} {times}",
    ),
    "squat": (
        "{subj} squats {times} {adv}",
        "{subj} {adv_pre} squats down and stands back up {times}",
        "{subj} does {count} {adv}",
        "{subj} bends {pos} knees into a squat {times} {adv}",
    ),
    "wave": (
        "{subj} waves {pos} {side} hand {adv}",
        "{subj} waves with {pos} {side} hand {adv}",
        "{subj} raises {pos} {side} arm and waves {adv}",
        "{subj} {adv_pre} waves hello with the {side} hand",
        "using {pos} {side} hand, {subj} waves {adv}",
    ),
    "kick": (
        "{subj} kicks forward with {pos} {side} leg {times}",
        "{subj} kicks with the {side} foot {times}",
        "{subj} does {count} with {pos} {side} leg",
        "using {pos} {side} leg, {subj} kicks {times}",
        "{subj} lifts {pos} {side} leg and kicks {times}",
    ),
    "punch": (
        "{subj} punches with {pos} {side} arm {times}",
        "{subj} throws {count} with {pos} {side} hand",
        "{subj} punches forward with the {side} fist {times}",
        "{subj} raises {pos} fists and punches with the {side} hand {times}",
    ),
    "turn": (
        "{subj} turns {dir} {adv}",
        "{subj} {adv_pre} turns {dir} in place",
        "{subj} rotates {dir} {adv}",
        "standing in one spot, {subj} turns {dir} {adv}",
    ),
    "sit_down": (
        "{subj} sits down {adv}",
        "{subj} {adv_pre} sits down on a chair",
        "{subj} takes a seat {adv}",
        "{subj} bends {pos} knees and sits down {adv}",
    ),
    "sit_down_and_stand_up": (
        "{subj} sits down and stands back up {adv}",
        "{subj} {adv_pre} sits on a chair and then gets up",
        "{subj} takes a seat and then stands up again {adv}",
        "{subj} {adv_pre} sits down, then rises to {pos} feet",
    ),
    "clap": (
        "{subj} claps {times} {adv}",
        "{subj} {adv_pre} claps {pos} hands {times}",
        "{subj} brings {pos} hands together {times} {adv}",
        "{subj} is clapping {pos} hands {adv}",
    ),
    "raise_arms": (
        "{subj} raises {pos} {side} arm {times}",
        "{subj} lifts {pos} {side} hand above {pos} head {times}",
        "{subj} puts {pos} {side} arm up in the air {times}",
        "{subj} reaches up with the {side} hand {times}",
    ),
    "raise_both_arms": (
        "{subj} raises both arms {times}",
        "{subj} lifts both hands above {pos} head {times}",
        "{subj} puts {pos} arms up in the air {times}",
        "{subj} reaches up with both hands {times}",
    ),
    "jumping_jacks": (
        "{subj} does {count} {adv}",
        "{subj} {adv_pre} does jumping jacks",
        "{subj} jumps while spreading {pos} arms and legs {times} {adv}",
        "{subj} performs {count} {adv}",
    ),
    "side_step": (
        "{subj} steps sideways to the {side} {adv}",
        "{subj} side steps to {pos} {side} {adv}",
        "{subj} {adv_pre} shuffles to the {side}",
        "{subj} takes {count} to the {side} {adv}",
        "{subj} moves sideways to the {side} {adv}",
    ),
    "look_around": (
        "{subj} looks to the {side} and then to the {other}",
        "{subj} turns {pos} head {side}, then {other} {times}",
        "standing still, {subj} looks around, first to the {side}",
        "{subj} glances {side} and then {other} {times}",
    ),
}


def _pick(rng, options):
    """A uniform choice that keeps the option's Python type (rng.choice would return numpy scalars)."""
    return options[rng.integers(len(options))]


def _sample_variant(action, rng):
    variant = {name: _pick(rng, options) for name, options in _VARIANT_OPTIONS[action].items()}
    if variant.get("direction") == "circle":
        variant["side"] = _pick(rng, _SIDES)
    return variant


def _captions(action, variant, rng):
    """Three different sentences: distinct templates and distinct subjects, so no two can coincide."""
    template_set = action
    if action == "sit_down" and variant["stand_up"]:
        template_set = "sit_down_and_stand_up"
    elif action == "raise_arms" and variant["side"] == "both":
        template_set = "raise_both_arms"
    templates = _TEMPLATES[template_set]
    side = variant.get("side", variant.get("direction"))  # walking "left" / "right" is a direction
    repetitions = variant.get("repetitions", 1)
    captions = []
    for template_index, subject_index in zip(
        rng.permutation(len(templates))[:3], rng.permutation(len(_SUBJECTS))[:3], strict=True
    ):
        subject, possessive = _SUBJECTS[subject_index]
        words = {"subj": subject, "pos": possessive, "side": side, "other": _OTHER_SIDE.get(side),
                 "times": _TIMES[repetitions]}
        if "speed" in variant:
            words["adv"] = _pick(rng, _ADVERBS[variant["speed"]])
            words["adv_pre"] = _pick(rng, _ADVERBS_BEFORE_VERB[variant["speed"]])
        if action in _COUNTED:
            singular, plural = _COUNTED[action]
            words["count"] = f"a {singular}" if repetitions == 1 else f"{_NUMBERS[repetitions]} {plural}"
        if action in _DIRECTIONS:
            key = variant["angle"] if action == "turn" else variant["direction"]
            words["dir"] = _pick(rng, _DIRECTIONS[action][key]).format(**words)
        text = templates[template_index].format(**words)
        captions.append(" ".join(text.split()).replace(" ,", ","))
    return captions


# ---------------------------------------------------------------------------------------------------
# Assembly and public API


def _make_motion(action, rng, motion_id):
    body = _random_body(rng)
    variant = _sample_variant(action, rng)
    # builders only know the left-handed take; the right-handed one is its mirror image
    left_handed = {name: "left" if value == "right" else value for name, value in variant.items()}
    motion = _place(_BUILDERS[action](rng, left_handed, body), body)
    if left_handed != variant:
        motion = _mirror(motion)
    return {
        "id": motion_id,
        "motion": motion.astype(np.float32),
        "captions": _captions(action, variant, rng),
        "action": action,
        "variant": variant,
    }


def generate_demo_motions(num_motions: int, seed: int, *, first_index: int = 0) -> list[dict]:
    """`num_motions` captioned motions, every action equally often (give or take one), in shuffled order.

    `seed` fixes the order of actions; each motion's body, variant, jitter and captions come from
    (`seed`, `first_index + i`). Ids are `demo_{first_index + i:06d}`, so several calls can share one
    id space without collisions.
    """
    order = np.resize(np.arange(len(ACTIONS)), num_motions)
    np.random.default_rng(seed).shuffle(order)
    return [
        _make_motion(ACTIONS[action], np.random.default_rng([seed, first_index + i]), f"demo_{first_index + i:06d}")
        for i, action in enumerate(order)
    ]


_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "motion": datasets.Array3D(shape=(None, len(_PARENTS), 3), dtype="float32"),
        "captions": datasets.List(datasets.Value("string")),
        "action": datasets.Value("string"),
    }
)


def load_demo_dataset(
    num_train: int = 1200, num_validation: int = 150, num_test: int = 150, seed: int = 0
) -> datasets.DatasetDict:
    """Train / validation / test splits built in memory (nothing is cached to disk or downloaded).

    Each split draws from its own seed derived from `seed`, and ids run on across splits, so no motion
    or id is shared between them.
    """
    splits, first_index = {}, 0
    for number, (name, size) in enumerate((("train", num_train), ("validation", num_validation), ("test", num_test))):
        split_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
        motions = generate_demo_motions(size, split_seed, first_index=first_index)
        first_index += size
        columns = {column: [motion[column] for motion in motions] for column in _FEATURES}
        splits[name] = datasets.Dataset.from_dict(columns, features=_FEATURES)
    return datasets.DatasetDict(splits)
