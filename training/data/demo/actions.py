"""The demo's 14 actions: time profiles, a take's joint angles and root motion, and one builder per action.

Each builder performs the left-handed / left-turning version of its action; `body.mirror` makes the
right one. A builder takes (rng, variant, body) and returns a `Performance`, which `positions` then
turns into world joint positions.
"""

import numpy as np

from motionpatches.training.data.common import TARGET_FPS

from .body import ARM, FEET, LEG, PARENTS, SIGN, Body, place

_MIN_FRAMES, _MAX_FRAMES = 40, 200
_TEMPO = {"slow": 0.7, "normal": 1.0, "fast": 1.4}  # cadence factor (and, for locomotion, distance)


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


class Performance:
    """One take of an action before it is placed in the world: timing, joint angles and root motion.

    Builders add joint angles (degrees) on top of a relaxed standing pose with a little idle sway, set
    the heading, the per-frame root displacement for locomotion, the height of any jump, and which
    foot joints must stay put on the floor while the body moves over them.
    """

    def __init__(self, rng: np.random.Generator, active_seconds: float):
        self.start = rng.uniform(0.2, 0.7)  # quiet standing before the action begins
        self.end = self.start + active_seconds
        natural_frames = round((self.end + rng.uniform(0.2, 0.7)) * TARGET_FPS)
        frames = int(np.clip(natural_frames, _MIN_FRAMES, _MAX_FRAMES))  # short takes stand still longer
        self.t = np.arange(frames) / TARGET_FPS
        self.amplitude = rng.uniform(0.85, 1.15)
        self.angles = np.zeros((len(PARENTS), frames, 3))
        self.heading = np.full(frames, rng.uniform(-10.0, 10.0))  # starts facing +Z, give or take
        self.steps = np.zeros((frames, 2))  # root displacement per frame in the body frame: (left, forward)
        self.airborne = np.zeros(frames)
        self.anchor: tuple[int, ...] = FEET
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
        hip, knee_joint, _ = LEG[side]
        self.angles[hip, :, 0] -= flex
        self.angles[hip, :, 2] += SIGN[side] * abduct
        self.angles[knee_joint, :, 0] += knee

    def arm(self, side, forward=0.0, abduct=0.0, inward=0.0, elbow=0.0, forearm_out=0.0):
        """Shoulder: raise forward / sideways, swing towards the midline; elbow: bend, or open sideways."""
        shoulder, elbow_joint = ARM[side]
        self.angles[shoulder, :, 0] -= forward
        self.angles[shoulder, :, 1] -= SIGN[side] * inward
        self.angles[shoulder, :, 2] += SIGN[side] * abduct
        self.angles[elbow_joint, :, 0] -= elbow
        self.angles[elbow_joint, :, 2] += SIGN[side] * forearm_out

    def spine(self, lean=0.0, twist=0.0, bend=0.0):
        """Forward lean, twist to the left and side bend to the left, spread over the three spine joints."""
        share = np.stack([np.broadcast_to(angle, self.t.shape) for angle in (lean, twist, bend)], axis=-1) / 3
        for joint in (3, 6, 9):
            self.angles[joint] += share

    def flatten_feet(self):
        """Counter-rotate the ankles so soles stay level, as they do on the floor (not for a kicking foot)."""
        for side, (hip, knee, ankle) in LEG.items():
            if self.flat_feet[side]:
                self.angles[ankle, :, 0] -= self.angles[hip, :, 0] + self.angles[knee, :, 0]
                self.angles[ankle, :, 2] -= self.angles[hip, :, 2]

    def positions(self, body: Body) -> np.ndarray:
        """World joint positions (T, 22, 3) of this take performed by `body`, feet on the floor."""
        self.flatten_feet()
        return place(body, self.angles, self.heading, self.steps, self.airborne, self.anchor)


# ---------------------------------------------------------------------------------------------------
# Actions


def _walk(rng, variant, body):
    tempo = _TEMPO[variant["speed"]] * rng.uniform(0.92, 1.08)
    direction = variant["direction"]
    p = Performance(rng, rng.uniform(6.0, 8.0) if direction == "circle" else rng.uniform(3.0, 8.0))
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
    p.steps[:, 1] = (-speed if direction == "backward" else speed) / TARGET_FPS
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
    p = Performance(rng, rng.uniform(5.0, 7.5) if circle else rng.uniform(2.5, 6.0))
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
    p.steps[:, 1] = 2 * body.leg_length * np.sin(np.radians(swing)) * cadence * 1.1 * moving / TARGET_FPS
    if circle:
        p.heading += rng.uniform(330, 390) * np.cumsum(moving) / moving.sum()
    p.anchor = ()
    return p


def _jump(rng, variant, body):
    repetitions, period = variant["repetitions"], 1.1 * rng.uniform(0.9, 1.1)
    p = Performance(rng, repetitions * period)
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
    p = Performance(rng, repetitions * period)
    depth = np.sin(np.pi * p.cycles(p.start, period, repetitions)) ** 2 * p.amplitude
    for side in ("left", "right"):
        p.leg(side, flex=95 * depth, knee=115 * depth)
        p.arm(side, forward=80 * depth)
    p.spine(lean=40 * depth)
    return p


def _wave(rng, variant, body):
    p = Performance(rng, rng.uniform(2.5, 4.5))
    raised = p.envelope(p.start, p.end, rise=0.5)
    frequency = 2.0 * _TEMPO[variant["speed"]] * rng.uniform(0.9, 1.1)
    wag = 25 * p.amplitude * np.sin(2 * np.pi * frequency * (p.t - p.start) + rng.uniform(0, 2 * np.pi))
    # upper arm out to the side and a little forward, forearm up, swinging side to side
    p.arm("left", abduct=rng.uniform(90, 110) * raised, inward=20 * raised, forearm_out=(80 + wag) * raised)
    return p


def _kick(rng, variant, body):
    repetitions, period = variant["repetitions"], 1.3 * rng.uniform(0.9, 1.1)
    p = Performance(rng, repetitions * period)
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
    p = Performance(rng, 1.2 + repetitions * period)
    guard = p.envelope(p.start, p.end, rise=0.5)
    extension = _keyframes(p.cycles(p.start + 0.6, period, repetitions), [0, 0.3, 0.55, 1], [0, 1, 1, 0])
    extension *= min(p.amplitude, 1.0)
    p.arm(
        "left",
        forward=guard * (30 + 55 * extension),
        abduct=guard * (15 - 10 * extension),
        inward=guard * (20 - 10 * extension),
        elbow=guard * (120 - 115 * extension),
    )
    p.arm("right", forward=30 * guard, abduct=15 * guard, inward=20 * guard, elbow=120 * guard)
    p.spine(twist=-20 * extension)  # the left shoulder drives forward
    for side in ("left", "right"):
        p.leg(side, knee=10 * guard)
    return p


def _turn(rng, variant, body):
    angle = variant["angle"]
    duration = angle / 90 * {"slow": 2.2, "normal": 1.4, "fast": 0.9}[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = Performance(rng, duration)
    p.heading += angle * rng.uniform(0.92, 1.08) * _ease((p.t - p.start) / duration)
    stepping = np.sin(np.pi * angle / 45 * np.clip((p.t - p.start) / duration, 0, 1))
    p.leg("left", flex=15 * np.maximum(stepping, 0), knee=30 * np.maximum(stepping, 0))
    p.leg("right", flex=15 * np.maximum(-stepping, 0), knee=30 * np.maximum(-stepping, 0))
    return p


def _sit_down(rng, variant, body):
    descent = {"slow": 2.6, "normal": 1.8, "fast": 1.2}[variant["speed"]] * rng.uniform(0.9, 1.1)
    seated = rng.uniform(1.0, 2.5)
    p = Performance(rng, descent + seated + (descent if variant["stand_up"] else 0.0))
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
    p = Performance(rng, 1.0 + claps / frequency)
    raised = p.envelope(p.start, p.end, rise=0.5)
    clapping = (p.t >= p.start + 0.5) & (p.t < p.start + 0.5 + claps / frequency)
    apart = np.where(clapping, 0.5 + 0.5 * np.cos(2 * np.pi * frequency * (p.t - p.start - 0.5)), 1.0)
    for side in ("left", "right"):
        p.arm(side, forward=45 * raised, inward=(35 - 30 * apart * p.amplitude) * raised, elbow=55 * raised)
    return p


def _raise_arms(rng, variant, body):
    repetitions, period = variant["repetitions"], rng.uniform(2.5, 3.5)
    p = Performance(rng, repetitions * period)
    up = _keyframes(p.cycles(p.start, period, repetitions), [0, 0.3, 0.7, 0.95, 1], [0, 1, 1, 0, 0])
    for side in ("left", "right") if variant["side"] == "both" else ("left",):
        p.arm(side, forward=rng.uniform(155, 175) * up, abduct=10 * up)
    return p


def _jumping_jacks(rng, variant, body):
    repetitions = variant["repetitions"]
    period = {"slow": 1.3, "normal": 1.0, "fast": 0.75}[variant["speed"]] * rng.uniform(0.9, 1.1)
    p = Performance(rng, repetitions * period)
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
    p = Performance(rng, steps * period)
    progress = np.clip((p.t - p.start) / period, 0, steps)
    done, within = np.floor(progress), progress % 1.0
    # the left foot leads over the first half of each step, the right foot closes over the second
    left_foot = width * (done + _ease(2 * within))
    right_foot = width * (done + _ease(2 * within - 1))
    spread = np.degrees(np.arcsin((left_foot - right_foot) / 2 / body.leg_length))
    for side, lift in (
        ("left", np.sin(np.pi * np.clip(2 * within, 0, 1))),
        ("right", np.sin(np.pi * np.clip(2 * within - 1, 0, 1))),
    ):
        p.leg(side, abduct=spread, flex=15 * lift, knee=30 * lift)
    p.steps[:, 0] = np.diff((left_foot + right_foot) / 2, prepend=0.0)
    p.anchor = ()
    return p


def _look_around(rng, variant, body):
    repetitions, period = variant["repetitions"], rng.uniform(2.5, 3.5)
    p = Performance(rng, repetitions * period)
    reach = rng.uniform(50, 70) * p.amplitude
    turn = _keyframes(p.cycles(p.start, period, repetitions), [0, 0.2, 0.4, 0.6, 0.8, 1], [0, 1, 1, -1, -1, 0])
    p.angles[12, :, 1] += reach * turn  # the neck turns the head, first to the left
    p.spine(twist=0.35 * reach * turn)
    return p


# ---------------------------------------------------------------------------------------------------
# Variants

BUILDERS = {
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
ACTIONS = tuple(BUILDERS)

SIDES = ("left", "right")
SPEEDS = ("slow", "normal", "fast")
# Repetition counts are capped so that every take fits in _MAX_FRAMES at its slowest tempo.
_VARIANT_OPTIONS = {
    "walk": {"direction": ("forward", "backward", "left", "right", "circle"), "speed": SPEEDS},
    "run": {"direction": ("forward", "circle"), "speed": SPEEDS},
    "jump": {"direction": ("in_place", "forward"), "repetitions": (1, 2, 3)},
    "squat": {"repetitions": (1, 2, 3), "speed": SPEEDS},
    "wave": {"side": SIDES, "speed": SPEEDS},
    "kick": {"side": SIDES, "repetitions": (1, 2, 3)},
    "punch": {"side": SIDES, "repetitions": (1, 2, 3, 4)},
    "turn": {"side": SIDES, "angle": (90, 180), "speed": SPEEDS},
    "sit_down": {"stand_up": (False, True), "speed": SPEEDS},
    "clap": {"repetitions": (3, 4, 5, 6), "speed": SPEEDS},
    "raise_arms": {"side": ("left", "right", "both"), "repetitions": (1, 2)},
    "jumping_jacks": {"repetitions": (2, 3, 4, 5), "speed": SPEEDS},
    "side_step": {"side": SIDES, "repetitions": (2, 3, 4), "speed": SPEEDS},
    "look_around": {"side": SIDES, "repetitions": (1, 2)},
}


def pick(rng, options):
    """A uniform choice that keeps the option's Python type (rng.choice would return numpy scalars)."""
    return options[rng.integers(len(options))]


def sample_variant(action, rng):
    variant = {name: pick(rng, options) for name, options in _VARIANT_OPTIONS[action].items()}
    if variant.get("direction") == "circle":
        variant["side"] = pick(rng, SIDES)
    return variant
