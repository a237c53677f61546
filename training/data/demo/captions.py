"""The demo's captions: sentence templates per action and the words that fill them for a variant.

Only the words "left" / "right" tell a left-handed take from its mirror image, so every template of a
lateral action names the side, and the speed words ("slowly", "quickly", ...) appear exactly when the
variant's speed is not "normal".
"""

from .actions import pick

_OTHER_SIDE = {"left": "right", "right": "left"}

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


def write_captions(action, variant, rng):
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
        words = {
            "subj": subject,
            "pos": possessive,
            "side": side,
            "other": _OTHER_SIDE.get(side),
            "times": _TIMES[repetitions],
        }
        if "speed" in variant:
            words["adv"] = pick(rng, _ADVERBS[variant["speed"]])
            words["adv_pre"] = pick(rng, _ADVERBS_BEFORE_VERB[variant["speed"]])
        if action in _COUNTED:
            singular, plural = _COUNTED[action]
            words["count"] = f"a {singular}" if repetitions == 1 else f"{_NUMBERS[repetitions]} {plural}"
        if action in _DIRECTIONS:
            key = variant["angle"] if action == "turn" else variant["direction"]
            words["dir"] = pick(rng, _DIRECTIONS[action][key]).format(**words)
        text = templates[template_index].format(**words)
        captions.append(" ".join(text.split()).replace(" ,", ","))
    return captions
