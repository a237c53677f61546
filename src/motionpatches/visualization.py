"""Pictures of motions, motion patches, retrieval results and ViT attention (Pillow + numpy + torch only).

    from motionpatches.visualization import motion_patches_image, skeleton_animation
    motion_patches_image(processor(motions=[motion])["motion_values"], part_names=processor.feature_extractor.part_names)
    skeleton_animation(motion, "humanml3d", "motion.gif", view="side")

An optional module: nothing in the model, configuration or processor imports it, so matplotlib or a
display is never needed to train or run a model.

Camera convention (motions are `(T, J, 3)` in metres, Y up, the person facing +Z with their left
side towards +X, as in HumanML3D and KIT-ML). All views are orthographic, and one camera frames the
whole motion (bounds over every frame, equal aspect, the ground at the bottom), so the figure moves
through a fixed scene (keyframe strips re-centre each panel sideways on its pose):

- ``"front"``: the camera stands on +Z, where the person is facing, looking back at them.
  The person's left (+X) is on the image's right, like a person facing you; up (+Y) is up.
- ``"side"``: the camera stands on the person's right (-X); their facing direction (+Z) points to
  the image's right, up is up.
- ``"top"``: the camera looks down from +Y; the facing direction (+Z) points up the image and the
  person's left (+X) is on the image's left, as seen from above and behind.

Body parts are coloured per canonical part: left limbs in blues, right limbs in oranges, the torso
in dark grey (chains with other names take further colours in order).
"""

import os
import textwrap
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from motionpatches.processors.feature_extraction_motionpatches import load_motion
from motionpatches.processors.skeletons import Skeleton, resolve_skeleton

__all__ = [
    "PART_COLOURS",
    "VIEWS",
    "attention_figure",
    "class_token_attention",
    "keyframe_strip",
    "motion_attention",
    "motion_patches_image",
    "render_pose",
    "retrieval_figure",
    "skeleton_animation",
]

POINTS_PER_PART = 16
# Okabe-Ito colours (readable with colour-blindness): blues for the left, oranges for the right
PART_COLOURS = {
    "torso": (70, 70, 70),
    "left_arm": (0, 114, 178),
    "left_leg": (86, 180, 233),
    "right_arm": (213, 94, 0),
    "right_leg": (230, 159, 0),
}
_EXTRA_COLOURS = ((0, 158, 115), (204, 121, 167), (240, 228, 66), (120, 60, 160))
# (image-right axis, image-up axis) in world coordinates; the camera looks along -(right x up)
VIEWS = {
    "front": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "side": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "top": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
}
_BACKGROUND = (255, 255, 255)
_GROUND = (150, 150, 150)
_TRAIL = (175, 175, 175)
_TEXT = (40, 40, 40)
_SUPERSAMPLE = 3  # poses are drawn this many times larger, then downsampled: smooth lines without aggdraw
_MARGIN = 0.08  # fraction of the image left free on each side of the framed motion


# --------------------------------------------------------------------------------------------------
# Motion-patch images


def _single_motion_values(motion_values) -> np.ndarray:
    """A float `(3, frames, width)` array from an array or tensor of that shape or a batch of one."""
    if hasattr(motion_values, "detach"):
        motion_values = motion_values.detach().float().cpu().numpy()
    array = np.asarray(motion_values, dtype=np.float64)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(f"motion_values holds {array.shape[0]} motions; pass one, e.g. motion_values[i]")
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"motion_values has shape {array.shape}; expected (3, frames, width) or (1, 3, frames, width)")
    return array


def _channel_colours(values: np.ndarray) -> np.ndarray:
    """`(frames, width, 3)` uint8: x, y, z each min-max scaled over the image to 0-255 (a constant channel is grey).

    Per-channel scaling, as in the paper's Figure 4, keeps the small lateral (x) motions visible next to
    the large vertical (y) extent of the body.
    """
    low = values.min(axis=(1, 2), keepdims=True)
    span = values.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 0.5)
    return np.round(scaled * 255).astype(np.uint8).transpose(1, 2, 0)


def _num_parts(width: int, part_names) -> int:
    if part_names is not None:
        if len(part_names) == 0 or width % len(part_names):
            raise ValueError(
                f"motion_values width {width} cannot be split into {len(part_names)} parts {list(part_names)}"
            )
        return len(part_names)
    if width % POINTS_PER_PART:
        raise ValueError(
            f"motion_values width {width} is not a multiple of {POINTS_PER_PART} points per part; pass part_names"
        )
    return width // POINTS_PER_PART


def _font(size: int = 11) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _short_label(name: str, font, width: int) -> str:
    """The part name, or its initials ("left_arm" -> "LA") when the full name is wider than its columns."""
    label = name.replace("_", " ")
    if font.getlength(label) <= width:
        return label
    return "".join(word[0] for word in name.split("_") if word).upper()


def _with_part_labels(image: Image.Image, part_names, part_width: int, separator: int) -> Image.Image:
    """`image` below a white band naming each part above its columns."""
    font = _font()
    band = font.getbbox("Ag")[3] + 6
    out = Image.new("RGB", (image.width, image.height + band), _BACKGROUND)
    out.paste(image, (0, band))
    draw = ImageDraw.Draw(out)
    for index, name in enumerate(part_names):
        label = _short_label(name, font, part_width)
        centre = index * (part_width + separator) + part_width / 2
        draw.text((centre, band / 2), label, fill=_TEXT, font=font, anchor="mm")
    return out


def _patch_layout(pixels: np.ndarray, parts: int, cell: int, separator: int, part_names=None) -> Image.Image:
    """Enlarge every value to `cell` x `cell` pixels and put white bars of `separator` pixels between parts."""
    if cell < 1 or separator < 0:
        raise ValueError(f"cell={cell} must be >= 1 and separator={separator} >= 0")
    big = pixels.repeat(cell, axis=0).repeat(cell, axis=1)
    bar = np.full((big.shape[0], separator, 3), 255, dtype=np.uint8)
    pieces = []
    for index, block in enumerate(np.split(big, parts, axis=1)):
        pieces.extend([bar, block] if index else [block])
    image = Image.fromarray(np.concatenate(pieces, axis=1), "RGB")
    if part_names is None:
        return image
    return _with_part_labels(image, part_names, big.shape[1] // parts, separator)


def motion_patches_image(motion_values, part_names=None, cell: int = 4, separator: int = 2) -> Image.Image:
    """One motion's motion-patch image as a picture, like the paper's Figure 4.

    motion_values: `(3, frames, width)` or `(1, 3, frames, width)` (numpy or torch), e.g. the
        processor's `motion_values`; channels x, y, z become red, green, blue, time runs down.
    part_names: the column order (`feature_extractor.part_names`); labels the parts on top. Without it
        the columns are split every 16 points and no labels are drawn.

    The picture is `frames * cell` pixels high (plus a label band when `part_names` is given) and
    `width * cell + (parts - 1) * separator` pixels wide.
    """
    values = _single_motion_values(motion_values)
    parts = _num_parts(values.shape[2], part_names)
    return _patch_layout(_channel_colours(values), parts, cell, separator, part_names)


# --------------------------------------------------------------------------------------------------
# Skeleton drawing


@dataclass(frozen=True)
class _Camera:
    """An orthographic camera: world point -> pixel, and how near the point is to the camera."""

    right: np.ndarray
    up: np.ndarray
    centre: np.ndarray  # (2,) view coordinates at the image centre
    scale: float  # pixels per metre
    size: int
    floor: float | None  # the ground height (world y), for views that see the ground edge-on

    def project(self, points: np.ndarray) -> np.ndarray:
        """`(..., 3)` world points -> `(..., 2)` pixel coordinates (x right, y down)."""
        view = np.stack([points @ self.right, points @ self.up], axis=-1) - self.centre
        return np.stack([self.size / 2 + view[..., 0] * self.scale, self.size / 2 - view[..., 1] * self.scale], axis=-1)

    def nearness(self, points: np.ndarray) -> np.ndarray:
        """Larger for points nearer the camera, so far limbs can be drawn first and get covered."""
        return points @ np.cross(self.right, self.up)


def _fit_camera(motion: np.ndarray, view: str, size: int, follow: bool = False) -> _Camera:
    """A camera that frames every frame of `motion` in a `size` x `size` image, the ground at the bottom.

    With `follow=True` the scale fits the widest single frame instead of the whole path, for cameras
    that are then re-centred on each frame (`_followed`).
    """
    if view not in VIEWS:
        raise ValueError(f"view={view!r}; expected one of {sorted(VIEWS)}")
    right, up = (np.asarray(axis) for axis in VIEWS[view])
    view_points = np.stack([motion @ right, motion @ up], axis=-1).astype(np.float64)  # (T, J, 2)
    low, high = view_points.min(axis=(0, 1)), view_points.max(axis=(0, 1))
    extent = high - low
    if follow:
        extent[0] = (view_points[..., 0].max(axis=1) - view_points[..., 0].min(axis=1)).max()
    span = max(float(extent.max()), 1e-6)
    centre = (low + high) / 2
    floor = None
    if up[1] == 1.0:  # the ground is seen edge-on: stand the lowest point on the bottom margin
        floor = float(low[1])
        centre[1] = floor + span / 2
    return _Camera(right, up, centre, size * (1 - 2 * _MARGIN) / span, size, floor)


def _followed(camera: _Camera, positions: np.ndarray) -> _Camera:
    """`camera` shifted sideways to centre the pose `positions` (height and scale unchanged)."""
    across = positions @ camera.right
    return replace(camera, centre=np.array([(across.min() + across.max()) / 2, camera.centre[1]]))


def _part_colours(skeleton: Skeleton) -> dict[str, tuple[int, int, int]]:
    extra = iter(_EXTRA_COLOURS * len(skeleton.chains))
    return {part: PART_COLOURS.get(part) or next(extra) for part in skeleton.chains}


def _draw_pose(draw: ImageDraw.ImageDraw, positions: np.ndarray, skeleton: Skeleton, camera: _Camera, trail=None):
    """Ground line, optional root trail, then the chains from the farthest to the nearest, with joint dots.

    The torso chain runs pelvis -> head in both presets, so its last joint gets a bigger dot (the head),
    which makes the facing direction readable in the side view.
    """
    line_width = max(2, round(camera.size / 70))
    if camera.floor is not None:
        ground_y = camera.project(np.array([0.0, camera.floor, 0.0]))[1]
        draw.line([(0, ground_y), (camera.size, ground_y)], fill=_GROUND, width=max(1, line_width // 2))
    if trail is not None and len(trail) > 1:
        draw.line([tuple(p) for p in camera.project(trail)], fill=_TRAIL, width=max(1, line_width // 2), joint="curve")
    colours = _part_colours(skeleton)
    chains = sorted(skeleton.chains.items(), key=lambda item: camera.nearness(positions[list(item[1])]).mean())
    for part, chain in chains:
        pixels = camera.project(positions[list(chain)])
        colour = colours[part]
        draw.line([tuple(p) for p in pixels], fill=colour, width=line_width, joint="curve")
        for index, (x, y) in enumerate(pixels):
            radius = line_width * (1.6 if part == "torso" and index == len(chain) - 1 else 0.8)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def _render(positions: np.ndarray, skeleton: Skeleton, camera: _Camera, trail=None) -> Image.Image:
    """One pose through `camera` (fitted at supersampled size), downsampled to the requested size."""
    canvas = Image.new("RGB", (camera.size, camera.size), _BACKGROUND)
    _draw_pose(ImageDraw.Draw(canvas), positions, skeleton, camera, trail)
    size = camera.size // _SUPERSAMPLE
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def _motion_and_skeleton(motion, skeleton) -> tuple[np.ndarray, Skeleton]:
    skeleton = resolve_skeleton(skeleton)
    array = load_motion(motion)
    if array.shape[1] != skeleton.num_joints:
        raise ValueError(f"motion has {array.shape[1]} joints but skeleton {skeleton.name!r} has {skeleton.num_joints}")
    return array, skeleton


def render_pose(positions, skeleton, size: int = 256, view: str = "front") -> Image.Image:
    """One `(J, 3)` pose as a `size` x `size` RGB image, framed on that pose (see the module's camera convention)."""
    array = np.asarray(positions.detach().cpu() if hasattr(positions, "detach") else positions, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"positions has shape {array.shape}; expected (joints, 3)")
    motion, skeleton = _motion_and_skeleton(array[None], skeleton)
    return _render(motion[0], skeleton, _fit_camera(motion, view, size * _SUPERSAMPLE))


def _gif_palette(skeleton: Skeleton) -> np.ndarray:
    """`(colours, 3)`: white and every drawing colour blended towards white in 16 steps (antialiased edges).

    One palette for all frames keeps colours from flickering and lets the GIF store only what changed.
    """
    colours = [*_part_colours(skeleton).values(), _GROUND, _TRAIL, _TEXT, (0, 0, 0)]
    alphas = np.linspace(0.0, 1.0, 16)[:, None]
    blends = [np.round(np.asarray(colour) * alphas + 255 * (1 - alphas)) for colour in colours]
    return np.unique(np.concatenate([np.full((1, 3), 255.0), *blends]), axis=0).astype(np.uint8)[:256]


def _paletted(image: Image.Image, palette: np.ndarray) -> Image.Image:
    """`image` with every pixel replaced by its nearest palette colour (exactly; Pillow's own lookup
    is approximate and turns the white background light grey)."""
    pixels = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    codes, inverse = np.unique(pixels @ np.array([1 << 16, 1 << 8, 1]), return_inverse=True)  # few distinct colours
    colours = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1)
    nearest = ((colours[:, None] - palette[None].astype(np.int32)) ** 2).sum(axis=-1).argmin(axis=1)
    out = Image.fromarray(nearest[inverse].astype(np.uint8).reshape(image.height, image.width), "P")
    out.putpalette(palette.ravel().tolist())
    return out


def skeleton_animation(
    motion,
    skeleton,
    path,
    fps: float | None = None,
    size: int = 256,
    view: str = "front",
    trail: bool = False,
    stride: int = 1,
) -> str:
    """Save `motion` `(T, J, 3)` as a looping animated GIF at `path` and return the path.

    fps: the motion's frame rate (default: the skeleton's, else 20). stride: keep every stride-th
    frame (shorter file, same speed). trail: draw the path of joint 0 (the root) so far.
    The GIF has `ceil(T / stride)` frames, except that Pillow merges consecutive identical frames.
    """
    array, skeleton = _motion_and_skeleton(motion, skeleton)
    if stride < 1:
        raise ValueError(f"stride={stride} must be >= 1")
    fps = fps or skeleton.fps or 20.0
    camera = _fit_camera(array, view, size * _SUPERSAMPLE)
    palette = _gif_palette(skeleton)
    frames = [
        _paletted(_render(array[t], skeleton, camera, array[: t + 1, 0] if trail else None), palette)
        for t in range(0, array.shape[0], stride)
    ]
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=round(1000 * stride / fps), loop=0, optimize=False
    )
    return os.fspath(path)


def _keyframe_indices(num_frames: int, num_keyframes: int) -> np.ndarray:
    if num_keyframes < 1:
        raise ValueError(f"num_keyframes={num_keyframes} must be >= 1")
    return np.linspace(0, num_frames - 1, num_keyframes).round().astype(int)


def keyframe_strip(motion, skeleton, num_keyframes: int = 6, size: int = 160, view: str = "front") -> Image.Image:
    """`num_keyframes` evenly spaced poses (first and last included) side by side, `num_keyframes * size` wide.

    All panels share one scale and ground line, but each is centred sideways on its own pose, so a
    motion that travels far stays large enough to read. Each panel is stamped with its time in seconds
    (at the skeleton's frame rate, else 20 fps).
    """
    array, skeleton = _motion_and_skeleton(motion, skeleton)
    camera = _fit_camera(array, view, size * _SUPERSAMPLE, follow=True)
    fps = skeleton.fps or 20.0
    strip = Image.new("RGB", (num_keyframes * size, size), _BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = _font(max(9, size // 14))
    for panel, frame in enumerate(_keyframe_indices(array.shape[0], num_keyframes)):
        strip.paste(_render(array[frame], skeleton, _followed(camera, array[frame])), (panel * size, 0))
        draw.text((panel * size + 4, 3), f"{frame / fps:.1f} s", fill=_TEXT, font=font)
        if panel:
            draw.line([(panel * size, 0), (panel * size, size)], fill=(225, 225, 225))
    return strip


# --------------------------------------------------------------------------------------------------
# Retrieval results


def _wrap(text: str, font, width: int) -> list[str]:
    """Greedy word wrap of `text` to lines at most `width` pixels wide (at the font's average glyph width)."""
    glyph = max(font.getlength("abcdefghijklmnopqrstuvwxyz") / 26, 1.0)
    return textwrap.wrap(text, width=max(8, int(width / glyph))) or [""]


def _text_block(lines: list[str], font, width: int, pad: int) -> Image.Image:
    line_height = font.getbbox("Ag")[3] + 3
    block = Image.new("RGB", (width, len(lines) * line_height + pad), _BACKGROUND)
    draw = ImageDraw.Draw(block)
    for index, line in enumerate(lines):
        draw.text((pad, pad // 2 + index * line_height), line, fill=_TEXT, font=font)
    return block


def _stack(blocks: list[Image.Image]) -> Image.Image:
    """Images one below the other, left-aligned, on white."""
    figure = Image.new(
        "RGB", (max(block.width for block in blocks), sum(block.height for block in blocks)), _BACKGROUND
    )
    top = 0
    for block in blocks:
        figure.paste(block, (0, top))
        top += block.height
    return figure


def _row_header(rank: int, score, caption) -> str:
    parts = [f"#{rank}"]
    if score is not None:
        parts.append(f"score {float(score):.3f}")
    if caption is not None:
        parts.append(str(caption))
    return "   ".join(parts)


def retrieval_figure(
    query: str, motions, skeleton, scores=None, captions=None, num_keyframes: int = 5, size: int = 140
) -> Image.Image:
    """A text-to-motion retrieval result: the query as title, then one row per motion, best first.

    Each row is a line "#rank   score s   caption" over the motion's keyframe strip; `scores` and
    `captions` are optional, one per motion. The figure grows by one row per motion.
    """
    motions = list(motions)
    if not motions:
        raise ValueError("retrieval_figure needs at least one motion")
    for label, values in (("scores", scores), ("captions", captions)):
        if values is not None and len(values) != len(motions):
            raise ValueError(f"{label} has {len(values)} entries for {len(motions)} motions")
    width, pad = num_keyframes * size, 8
    title_font, row_font = _font(16), _font(12)
    blocks = [_text_block(_wrap(f'Query: "{query}"', title_font, width - 2 * pad), title_font, width, pad)]
    for rank, motion in enumerate(motions, start=1):
        header = _row_header(
            rank, None if scores is None else scores[rank - 1], None if captions is None else captions[rank - 1]
        )
        blocks.append(_text_block(_wrap(header, row_font, width - 2 * pad), row_font, width, pad))
        blocks.append(keyframe_strip(motion, skeleton, num_keyframes, size))
    return _stack(blocks)


# --------------------------------------------------------------------------------------------------
# Attention


def _attention_weights(attn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * scale) of a timm `Attention` for its input `x`: `(batch, heads, tokens, tokens)`.

    timm computes attention with a fused kernel and never materialises the weights, so they are
    recomputed here from the same projection (and q/k normalisation, when the model has it).
    """
    batch, tokens, _ = x.shape
    heads = attn.num_heads
    head_dim = getattr(attn, "head_dim", attn.qkv.out_features // (3 * heads))
    qkv = attn.qkv(x).reshape(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    q = getattr(attn, "q_norm", torch.nn.Identity())(q)
    k = getattr(attn, "k_norm", torch.nn.Identity())(k)
    return ((q.float() * attn.scale) @ k.float().transpose(-2, -1)).softmax(dim=-1)


def _as_model_input(model, motion_values) -> torch.Tensor:
    values = torch.as_tensor(_single_motion_values(motion_values), dtype=torch.float32)[None]
    return values.to(next(model.parameters()).device)


def class_token_attention(model, motion_values) -> np.ndarray:
    """The class token's attention weights over all tokens in the motion ViT's last block, averaged over heads.

    Returns a `(tokens,)` array that sums to 1: entry 0 is the class token's weight on itself, then any
    other prefix (register) tokens, then the patches row by row. Runs `model.get_motion_features` in
    eval mode with a forward hook on the last block's `attn`; the model's training mode is restored.
    With the paper's average pooling the class token does not feed the embedding, so its attention
    shows where the last block looks rather than what the embedding is made of.
    """
    vit = model.motion_model
    if not getattr(vit, "has_class_token", False):
        raise ValueError("the motion tower has no class token, so there is no class-token attention to show")
    attn = vit.blocks[-1].attn
    if not hasattr(attn, "qkv"):
        raise TypeError(f"the last block's attention ({type(attn).__name__}) has no fused qkv projection")
    captured = {}

    def hook(module, args, kwargs, output):
        captured["weights"] = _attention_weights(module, args[0] if args else kwargs["x"])

    handle = attn.register_forward_hook(hook, with_kwargs=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.get_motion_features(motion_values=_as_model_input(model, motion_values))
    finally:
        handle.remove()
        model.train(was_training)
    return captured["weights"][0, :, 0, :].mean(dim=0).cpu().numpy()


def motion_attention(model, motion_values) -> np.ndarray:
    """Class-token attention on the patch grid: `(frames / patch_size, parts)`, rows are time windows.

    The grid sums to 1 minus the class token's weight on itself (`class_token_attention(...)[0]`),
    and minus the register tokens' weights for ViTs that have register tokens.
    """
    weights = class_token_attention(model, motion_values)
    vit = model.motion_model
    rows, columns = vit.patch_embed.grid_size
    return weights[vit.num_prefix_tokens :].reshape(rows, columns)


def _side_by_side(images: list[Image.Image], gap: int) -> Image.Image:
    """Images left to right, top-aligned, `gap` white pixels apart."""
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    figure = Image.new("RGB", (width, max(image.height for image in images)), _BACKGROUND)
    left = 0
    for image in images:
        figure.paste(image, (left, 0))
        left += image.width + gap
    return figure


def attention_figure(
    motion_values, attention, part_names=None, cell: int = 8, separator: int = 2, gap: int = 12
) -> Image.Image:
    """The motion-patch image (left) and, `gap` pixels to its right, the same image in grey under a red
    overlay whose opacity follows `attention` patch by patch; a legend below gives the weight range.

    attention: `(rows, parts)` weights such as `motion_attention`'s. Opacity is min-max scaled (the
    least attended patch stays clear, the most attended is the reddest), so even the nearly uniform
    attention of an untrained model shows its structure. The grey keeps the red for attention alone.
    """
    values = _single_motion_values(motion_values)
    weights = np.asarray(attention, dtype=np.float64)
    frames, width = values.shape[1:]
    if weights.ndim != 2 or frames % weights.shape[0] or width % weights.shape[1]:
        raise ValueError(f"attention of shape {weights.shape} does not tile motion_values of {frames} x {width}")
    parts = _num_parts(width, part_names) if part_names is not None else weights.shape[1]
    low, high = weights.min(), weights.max()
    alpha = (weights - low) / (high - low) if high > low else np.zeros_like(weights)
    alpha = alpha.repeat(frames // weights.shape[0], axis=0).repeat(width // weights.shape[1], axis=1)[..., None]
    colours = _channel_colours(values)
    light_grey = 128 + colours.astype(np.float64).mean(axis=-1, keepdims=True) / 2
    red = np.array([220.0, 20.0, 20.0])
    blended = np.round((1 - 0.85 * alpha) * light_grey + 0.85 * alpha * red).clip(0, 255).astype(np.uint8)
    pictures = [_patch_layout(pixels, parts, cell, separator, part_names) for pixels in (colours, blended)]
    picture = _side_by_side(pictures, gap)
    font = _font(10)
    legend = _text_block(
        _wrap(f"class-token attention per patch: {low:.2%} (clear) to {high:.2%} (red)", font, picture.width - 8),
        font,
        picture.width,
        8,
    )
    return _stack([picture, legend])
