"""An exponential moving average of the model's weights, validated and saved in place of the raw weights.

Validation of a contrastive model from one epoch to the next is noisy (a few hundred steps of a batch of 32
move the embedding space a lot), so the best raw snapshot is partly luck. The average of the recent weights
sits in the middle of that wandering; selecting among averaged snapshots is the stable choice.

The decay warms up as min(decay, (1 + step) / (10 + step)), as timm's ModelEma does, so the first steps do
not drag the randomly initialised weights along for thousands of steps. Buffers are copied, not averaged.
`state_dict` / `load_state_dict` make it a checkpointed object (`accelerator.register_for_checkpointing`):
a resumed run continues the same average.
"""

import contextlib

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight-average decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        names = list(self.shadow)
        params = dict(model.named_parameters())
        averaged = [self.shadow[name] for name in names]
        torch._foreach_lerp_(averaged, [params[name].detach() for name in names], 1.0 - decay)

    @contextlib.contextmanager
    def applied_to(self, model: torch.nn.Module):
        """The model with the averaged weights inside the block, its own weights restored after it."""
        params = dict(model.named_parameters())
        saved = {name: params[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, value in self.shadow.items():
                params[name].copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    params[name].copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("the saved weight average belongs to a model with other parameters")
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
