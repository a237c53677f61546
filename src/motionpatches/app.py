"""The motion search web app behind `motionpatches app`: three tabs over one `MotionIndex`.

    from motionpatches.app import build_app
    from motionpatches.index import MotionIndex
    build_app(MotionIndex.load("outputs/demo-index"), top_k=8).launch()

- **text → motions**: a description and k give a grid of the top-k motions, each an animated skeleton
  captioned with its id, score and captions (the ranking shows at once; animations drawn for the first
  time replace their grey stand-ins one by one);
- **motion → motions**: an uploaded `.npy` / `.bvh` / `.npz` file gives the same grid for the motions most
  like it;
- **motion → captions**: an uploaded or an indexed motion gives the captions of the index that describe it
  best, with their scores.

Offline by construction: analytics and Gradio's version check are off, there is no share link, the default
theme's fonts are served by the app itself, and every picture is drawn here by
`motionpatches.visualization.skeleton_animation`, once per indexed motion (then reused from a folder on
disk). Bad input (an empty query, a file no reader can use) becomes a message in the page; anything
unexpected is a message too, with its traceback in the server's log.

Gradio is an optional dependency (`pip install -e ".[app]"`): nothing else in the package imports this module.
"""

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from functools import partial

import gradio as gr
from PIL import Image

from motionpatches.visualization import skeleton_animation

__all__ = ["build_app", "run"]

logger = logging.getLogger(__name__)

MOTION_FILE_TYPES = [".npy", ".bvh", ".npz"]
MAX_K = 50  # each new animation costs about 0.3 s to draw: a larger grid would keep the user waiting
MAX_PICKER_IDS = 1000  # a dropdown of a million ids would be the page's whole payload; other ids are typed
EXAMPLE_QUERIES = ["a person waves with the left hand", "someone jumps up and down", "a person walks forward"]
# stride 2 halves the drawing time (about 0.3 s a motion on a 2-core machine) at 10 frames a second
default_render = partial(skeleton_animation, size=192, stride=2)


class QueryError(ValueError):
    """A problem with what the user asked, shown to them as it is."""


# ----------------------------------------------------------------------------- pictures
class RenderCache:
    """One GIF per index row, drawn on first request and then reused: a grid of eight motions costs
    seconds to draw the first time and nothing after."""

    def __init__(self, index, render=default_render, directory: str | None = None):
        self.index = index
        self.render = render
        if directory is None:
            directory = tempfile.mkdtemp(prefix="motionpatches-app-")
            # Gradio serves copies in its own cache, so the drawings are only needed while the app runs
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.placeholder = os.path.join(directory, "drawing.png")
        Image.new("RGB", (192, 192), (242, 242, 242)).save(self.placeholder)
        self._lock = threading.Lock()  # two tabs asking for one row must not write one file twice at once

    def path(self, row: int) -> str:
        return os.path.join(self.directory, f"row{row:09d}.gif")

    def has(self, row: int) -> bool:
        return os.path.exists(self.path(row))

    def __call__(self, row: int) -> str:
        path = self.path(row)
        with self._lock:
            if not os.path.exists(path):
                self._draw(row, path)
        return path

    def _draw(self, row: int, path: str) -> None:
        partial_path = path + ".part.gif"  # a crash mid-drawing must not leave a file that looks finished
        self.render(self.index.motion(row), self.index.skeleton, partial_path, fps=row_fps(self.index, row))
        os.replace(partial_path, path)


def row_fps(index, row: int) -> float | None:
    """The frame rate of the motion `index.motion(row)` returns (its own), None when the index does not say."""
    if "fps" not in index.rows.column_names:
        return None
    fps = index.rows[row]["fps"]
    return float(fps) if fps else None


def at_model_rate(index, row: int):
    """`index.motion(row)` at the rate the index's processor expects of an array: queries given as arrays are
    taken at that rate, and an indexed motion keeps its own (a 30 fps BVH, say)."""
    from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate

    motion, fps = index.motion(row), row_fps(index, row)
    model_fps = (index.info.get("processor") or {}).get("fps")
    if fps and model_fps and fps != model_fps:
        return resample_frame_rate(motion, fps, model_fps)
    return motion


def preview(path: str, skeleton, directory: str, render=default_render, file_options=None) -> str | None:
    """A GIF of an uploaded motion beside its results, or None when it cannot be drawn with `skeleton`
    (the search itself then says what is wrong with the file)."""
    from motionpatches.skipped import bvh_rig, read_positions

    try:
        motion = read_positions(path, file_options)
        drawn_with = bvh_rig(path, file_options) if path.lower().endswith(".bvh") else skeleton
        if motion.values.shape[1] != drawn_with.num_joints:
            return None
        handle, out = tempfile.mkstemp(prefix="query-", suffix=".gif", dir=directory)
        os.close(handle)
        return render(motion.values, drawn_with, out, fps=motion.fps)
    except Exception:  # a preview is a courtesy: the search reports the file's problem
        logger.debug("no preview of %s", path, exc_info=True)
        return None


# ----------------------------------------------------------------------------- checks and captions
def checked_k(k, size: int | None = None) -> tuple[int, str]:
    """(k within 1..size, a notice when it had to be lowered); the API takes any number, the sliders only these."""
    if k is None or not float(k).is_integer() or k < 1:
        raise QueryError(f"k must be a whole number of at least 1 (got {k})")
    if size is not None and k > size:
        return size, f"k = {int(k)} is more than the {size} indexed motions; showing all {size}. "
    return int(k), ""


def checked_query(text: str | None) -> str:
    if not text or not text.strip():
        raise QueryError(f'Type a description of a motion first, e.g. "{EXAMPLE_QUERIES[0]}".')
    return text.strip()


def checked_upload(path: str | None) -> str:
    if not path:
        raise QueryError(f"Upload a motion file first ({' / '.join(MOTION_FILE_TYPES)}).")
    return path


def caption_text(hit) -> str:
    """What a grid cell says under its animation: id, score and the motion's captions."""
    parts = [hit.id, f"score {hit.score:.3f}"]
    if hit.captions:
        parts.append(" | ".join(hit.captions))
    return " · ".join(parts)


def error_message(err: Exception, upload: str | None = None) -> str:
    """`err` for the page: Gradio's upload folder is noise next to the file name the user knows."""
    text = str(err) if isinstance(err, QueryError) else f"Could not search: {err}"
    if upload:
        text = text.replace(upload, os.path.basename(upload))
    return text


def timed(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


# ----------------------------------------------------------------------------- the three searches
class Searches:
    """What the three tabs call: each returns (the grids: yields) its outputs and a message, and never raises."""

    def __init__(self, index, renders: RenderCache, file_options=None, render=default_render):
        self.index = index
        self.renders = renders
        self.file_options = file_options
        self.render = render
        self.ids = {row_id: row for row, row_id in enumerate(index.rows["id"])}

    def text(self, query, k):
        """Yields (grid, message), the grid growing as its animations are drawn (see `_growing`)."""
        try:
            start = time.perf_counter()
            query = checked_query(query)
            k, notice = checked_k(k, len(self.index))
            hits = self.index.search_text([query], k)[0]
            searched = timed(time.perf_counter() - start)
        except Exception as err:
            yield [], self._failed(err)
            return
        yield from self._growing(
            hits, f'{notice}Top {len(hits)} of {len(self.index)} motions for "{query}" (search {searched}).'
        )

    def motion(self, upload, k):
        """Yields (the upload's picture, grid, message), the grid growing as its animations are drawn."""
        try:
            upload = checked_upload(upload)
            k, notice = checked_k(k, len(self.index))
            hits = self.index.search_motion([upload], k, file_options=self.file_options)[0]
            shown = self._preview(upload)
        except Exception as err:
            yield None, [], self._failed(err, upload)
            return
        status = f"{notice}Top {len(hits)} of {len(self.index)} motions like {os.path.basename(upload)}."
        yield from self._growing(hits, status, shown)

    def _growing(self, hits, status: str, *before):
        """The grid at once, a still picture standing in for each animation not drawn yet, then again as each is
        drawn (about 0.3 s apiece): the ranking shows at once, and a grid drawn before comes in one piece."""
        try:
            pending = [i for i, hit in enumerate(hits) if not self.renders.has(hit.row)]
            items = [
                (self.renders.placeholder if i in pending else self.renders(hit.row), caption_text(hit))
                for i, hit in enumerate(hits)
            ]
            for done, i in enumerate(pending):
                yield *before, list(items), f"{status} Drawing {done + 1} of {len(pending)}…"
                items[i] = (self.renders(hits[i].row), items[i][1])
        except Exception as err:
            yield *before, [], self._failed(err)
            return
        yield *before, items, status

    def captions(self, upload, picked, k):
        try:
            motion, shown, name = self._caption_query(upload, picked)
            k = checked_k(k)[0]  # how many captions there are is the index's to say
            pairs = self.index.search_captions([motion], k, file_options=self.file_options)[0]
            rows = [[caption, round(float(score), 4)] for caption, score in pairs]
            return shown, rows, f"Top {len(rows)} captions for {name}."
        except Exception as err:
            return None, [], self._failed(err, upload)

    def _caption_query(self, upload, picked):
        """(what to embed, its picture, its name): an upload wins over a picked id."""
        if upload:
            return upload, self._preview(upload), os.path.basename(upload)
        if picked is None or not str(picked).strip():
            raise QueryError("Upload a motion file or pick an indexed motion first.")
        row = self.ids.get(str(picked).strip())
        if row is None:
            raise QueryError(f"No indexed motion has the id {picked!r}.")
        return at_model_rate(self.index, row), self.renders(row), str(picked).strip()

    def _preview(self, upload):
        return preview(upload, self.index.skeleton, self.renders.directory, self.render, self.file_options)

    def _failed(self, err: Exception, upload: str | None = None) -> str:
        # bad files and bad k are the user's to fix; anything else is a bug the server's log must show
        if not isinstance(err, QueryError | ValueError | OSError):
            logger.exception("search failed")
        return error_message(err, upload)


# ----------------------------------------------------------------------------- the page
def _k_slider(index, top_k: int, elem_id: str) -> gr.Slider:
    largest = max(1, min(MAX_K, len(index)))
    return gr.Slider(1, largest, value=min(top_k, largest), step=1, precision=0, label="k (results)", elem_id=elem_id)


def _grid(elem_id: str) -> gr.Gallery:
    return gr.Gallery(
        label="results", columns=4, height="auto", object_fit="contain", allow_preview=True, elem_id=elem_id
    )


def _status(elem_id: str) -> gr.Textbox:
    return gr.Textbox(label="message", interactive=False, elem_id=elem_id)


def _upload(elem_id: str) -> gr.File:
    return gr.File(label="motion file", file_types=MOTION_FILE_TYPES, type="filepath", elem_id=elem_id)


def _text_tab(searches: Searches, top_k: int) -> None:
    with gr.Tab("text → motions", id="text"):
        with gr.Row():
            query = gr.Textbox(label="describe a motion", placeholder=EXAMPLE_QUERIES[0], scale=4, elem_id="query")
            k = _k_slider(searches.index, top_k, "text-k")
        button = gr.Button("Search", variant="primary", elem_id="search-text")
        status, grid = _status("text-status"), _grid("text-results")
        gr.Examples([[q] for q in EXAMPLE_QUERIES], inputs=[query])
        gr.on([button.click, query.submit], searches.text, [query, k], [grid, status], api_name="search_text")


def _motion_tab(searches: Searches, top_k: int) -> None:
    with gr.Tab("motion → motions", id="motion"):
        with gr.Row():
            upload = _upload("motion-upload")
            shown = gr.Image(label="your motion", type="filepath", interactive=False, height=192)
            k = _k_slider(searches.index, top_k, "motion-k")
        button = gr.Button("Find similar motions", variant="primary", elem_id="search-motion")
        status, grid = _status("motion-status"), _grid("motion-results")
        button.click(searches.motion, [upload, k], [shown, grid, status], api_name="search_motion")


def _captions_tab(searches: Searches, top_k: int) -> None:
    with gr.Tab("motion → captions", id="captions"):
        with gr.Row():
            upload = _upload("caption-upload")
            picked = gr.Dropdown(
                list(searches.ids)[:MAX_PICKER_IDS],
                value=None,
                allow_custom_value=True,
                label="or an indexed motion (id)",
                elem_id="caption-pick",
            )
            k = gr.Slider(1, MAX_K, value=top_k, step=1, precision=0, label="k (captions)")
        button = gr.Button("Describe", variant="primary", elem_id="search-captions")
        status = _status("caption-status")
        with gr.Row():
            shown = gr.Image(label="the motion", type="filepath", interactive=False, height=192)
            table = gr.Dataframe(headers=["caption", "score"], interactive=False, wrap=True, elem_id="caption-results")
        button.click(searches.captions, [upload, picked, k], [shown, table, status], api_name="search_captions")


def build_app(index, *, top_k: int = 8, render=default_render, file_options=None, cache_dir=None) -> gr.Blocks:
    """The Gradio app over `index` (a `MotionIndex`): not launched, so tests and callers choose how.

    top_k: the initial k of the sliders. render: `render(motion, skeleton, path, fps=...) -> path`, how a
    motion becomes an animation (default: a 192-pixel skeleton GIF at every second frame). file_options:
    how uploaded files are read (`MotionFileOptions`). cache_dir: where drawn GIFs are kept (default: a new
    folder under the system temp folder).
    """
    if len(index) == 0:
        raise ValueError("the index holds no motions; build it from a folder or dataset that has some")
    if top_k < 1:
        raise ValueError(f"top_k={top_k} must be at least 1")
    searches = Searches(index, RenderCache(index, render, cache_dir), file_options, render)
    with gr.Blocks(title="motionpatches search", analytics_enabled=False) as app:
        gr.Markdown(
            f"## Motion search\n{len(index):,} indexed motions. Search them by text, by motion, or describe one."
        )
        _text_tab(searches, top_k)
        _motion_tab(searches, top_k)
        _captions_tab(searches, top_k)
    return app


# ----------------------------------------------------------------------------- command line
def _model(args):
    from motionpatches.loading import load_model_and_processor

    if not getattr(args, "model", None):
        return None, None
    return load_model_and_processor(args.model, trust_remote_code=getattr(args, "trust_remote_code", False))


def _file_options(args):
    from motionpatches.arguments import motion_file_options

    return motion_file_options(args) if hasattr(args, "bvh_scale") else None


def build_missing_index(args, model, processor):
    """The index of `--dataset_name`'s motions, every split, embedded with the model and saved to `--index`."""
    import datasets

    from motionpatches.index import MotionIndex
    from motionpatches.training.data.catalog import load_named_dataset

    if model is None:
        raise ValueError(f"building the index {args.index} from {args.dataset_name!r} needs --model")
    print(f"no index at {args.index} yet: embedding every motion of {args.dataset_name!r} once (first start only)")
    start = time.perf_counter()
    splits, _ = load_named_dataset(args.dataset_name)
    rows = datasets.concatenate_datasets([splits[name] for name in splits])
    rows = rows.select_columns([c for c in ("id", "motion", "captions", "fps") if c in rows.column_names])
    index = MotionIndex.build(model, processor, rows, model_name_or_path=args.model)
    index.save(args.index)
    print(f"indexed {len(index)} motions in {time.perf_counter() - start:.1f} s -> {args.index}")
    return index


def load_index(args):
    """`--index` as saved, or built from `--dataset_name` when that folder does not exist yet."""
    from motionpatches.index import MotionIndex

    exists = os.path.exists(args.index)
    if not exists and not getattr(args, "dataset_name", None):
        raise FileNotFoundError(
            f"no index at {args.index}: build one with `motionpatches index --model M <motions> --out {args.index}`, "
            "or pass --dataset_name demo to build it from the demo data"
        )
    model, processor = _model(args)
    if not exists:
        return build_missing_index(args, model, processor)
    trust = getattr(args, "trust_remote_code", False)
    return MotionIndex.load(args.index, model=model, processor=processor, trust_remote_code=trust)


def run(args) -> int:
    """`motionpatches app`: load (or build) the index, then serve the app until interrupted."""
    index = load_index(args)
    app = build_app(index, top_k=args.top_k, file_options=_file_options(args))
    # share=False: no tunnel to gradio.live whatever GRADIO_SHARE says; ssr_mode=False: no Node server, one
    # process on one port; the footer keeps the API and settings pages and drops its link out to gradio.app
    # Ctrl-C may come while launch() is still finishing (the server answers before launch returns): caught
    # around both, and the server closed either way, or its threads keep the process alive
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            ssr_mode=False,
            footer_links=["api", "settings"],
            prevent_thread_lock=True,
        )
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0
