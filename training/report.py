"""Where a retrieval model fails, not just how often: a report on a split's embeddings.

    report = failure_report(embed_split(model, processor, rows), groups=rows["action"], group_by="action")
    write_report(report, rows, "report/", skeleton="humanml3d")

A split's R@1 averages over queries, so a big group of identical captions ("a person walks forward" many
times in HumanML3D, every take of one action in studio mocap) weighs as much as all its texts, and a whole
group that fails together can hide behind the groups that succeed. The report puts next to the per-query
figures the same R@k macro-averaged over groups (the mean over groups of each group's mean hit rate), a
table per group, the left/right confusion (`left_right_confusion`), the pairs of groups most often
confused at rank 1, and the worst text queries with what they retrieved instead.

Ranks are those of `retrieval_ranks` under protocol ``"all"`` (a motion whose first caption is the query's
own counts as correct), so the per-query R@k are exactly `retrieval_metrics(..., "all")`'s. Groups only
change the averaging: a group is a row's first caption, or a label such as the demo's `action` column.
What a failed text query retrieved instead is its best-scoring motion with another caption. With labels that
motion may share the query's label (the right action, a wrong speed or side): such failures are counted apart
(`failed_within_group`), and the confused pairs are the failures that land in another group.

`write_report` writes `report.json`, `report.md` and `worst_queries.png` (skeleton keyframes of the top
motions of the worst text queries) into a folder, each file replaced whole and `report.json` last.
"""

import io
import json
import os
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from motionpatches.atomic import atomic_path
from motionpatches.retrieval import RECALL_AT, retrieval_ranks
from motionpatches.training.evaluation import left_right_confusion
from motionpatches.visualization import keyframe_strip

__all__ = [
    "REPORT_FILES",
    "failure_report",
    "group_labels",
    "report_markdown",
    "worst_queries_picture",
    "write_report",
]

REPORT_FILES = (
    "worst_queries.png",
    "report.md",
    "report.json",
)  # in the order written: report.json marks a whole report
# text rows compared at once when looking for what a failed query retrieved: chunk x N similarities in memory
_CHUNK = 1024
_GREEN, _RED, _GREY, _TEXT = (0, 130, 60), (190, 30, 30), (110, 110, 110), (40, 40, 40)


# ----------------------------------------------------------------------------- the report
def failure_report(
    embeddings: dict,
    groups=None,
    k_values=RECALL_AT,
    top_pairs: int = 10,
    worst: int = 8,
    top_retrieved: int = 3,
    group_by: str | None = None,
) -> dict:
    """A JSON-ready dict of a split's retrieval failures (see the module docstring).

    Args:
        embeddings: `embed_split`'s dict: `text_embeds` and `motion_embeds` (N, D) normalised, `captions`
            (each row's first caption) and `ids`.
        groups: one label per row to group by (e.g. `rows["action"]`); None groups by caption.
        k_values: the k of R@k.
        top_pairs: how many of the most confused (query group, retrieved group) pairs to keep.
        worst: how many of the worst text queries to keep; texts with the same caption count once.
        top_retrieved: motions listed for each of the worst queries.
        group_by: the name the groups are reported under (default "caption", or "label" with `groups`).

    Keys: `per_query` and `macro` ({"t2m/R@1": percent, ...}; `per_query` also has MedR), `groups` (one
    entry per group, lowest t2m R@1 first), `confused_pairs` (query group -> another group, most frequent
    first), `failed_queries` and `failed_within_group` (text queries missed at rank 1, and those of them whose
    first motion shares their group), `left_right_confusion` (percent or None), `worst_queries`, and the
    counts and settings they were made with.
    """
    text, motion, captions, ids = _checked_embeddings(embeddings)
    k_values = _checked_k_values(k_values)
    for name, value in (("top_pairs", top_pairs), ("worst", worst), ("top_retrieved", top_retrieved)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    n = len(text)
    if groups is None:
        labels, group_by = captions, group_by or "caption"
    else:
        labels = [str(label) for label in groups]
        if len(labels) != n:
            raise ValueError(f"groups must have one label per row: expected {n} (embeddings rows), got {len(labels)}")
        group_by = group_by or "label"
    caption_code = np.unique(np.asarray(captions, dtype=str), return_inverse=True)[1].reshape(-1)
    group_names, group_code = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    group_code = group_code.reshape(-1)

    t2m, m2t = retrieval_ranks(text, motion, _same_caption_pairs(caption_code))
    failed = np.flatnonzero(t2m > 1)
    instead = _best_other_caption(text[failed], motion, caption_code[failed], caption_code)

    sizes = np.bincount(group_code, minlength=len(group_names))
    per_query, macro = {}, {}
    for direction, ranks in (("t2m", t2m), ("m2t", m2t)):
        for k in k_values:
            hits = (ranks <= k).astype(np.float64)
            per_query[f"{direction}/R@{k}"] = float(100.0 * hits.mean())
            macro[f"{direction}/R@{k}"] = float(100.0 * np.mean(np.bincount(group_code, hits) / sizes))
        per_query[f"{direction}/MedR"] = float(np.median(ranks))

    # with labels a failed text may find another caption of its own group first (the right action, a wrong
    # speed or side): counted apart, so the pairs show which groups are mistaken for which
    within = group_code[failed] == group_code[instead]
    pairs = Counter(zip(group_code[failed[~within]].tolist(), group_code[instead[~within]].tolist()))
    confused_pairs = [
        {
            "query_group": str(group_names[g]),
            "retrieved_group": str(group_names[h]),
            "count": count,
            "percent_of_group": 100.0 * count / int(sizes[g]),
            "example": {"query": captions[q], "retrieved": captions[r]},
        }
        for (g, h), count in sorted(
            pairs.items(), key=lambda item: (-item[1], group_names[item[0][0]], group_names[item[0][1]])
        )[:top_pairs]
        for q, r in [_first_example(failed, instead, group_code, g, h)]
    ]
    return {
        "protocol": "all",
        "num_queries": n,
        "group_by": group_by,
        "num_groups": len(group_names),
        "k_values": list(k_values),
        "failed_queries": len(failed),
        "failed_within_group": int(within.sum()),
        "per_query": per_query,
        "macro": macro,
        "left_right_confusion": left_right_confusion(
            {"text_embeds": text, "motion_embeds": motion, "captions": captions}
        ),
        "groups": _group_table(group_names, group_code, sizes, t2m, m2t, failed, instead),
        "confused_pairs": confused_pairs,
        "worst_queries": _worst_queries(text, motion, captions, ids, caption_code, labels, t2m, worst, top_retrieved),
    }


def group_labels(rows, column: str) -> list[str]:
    """The values of `rows[column]` as group labels; a column that is missing or holds lists or arrays is refused."""
    features = getattr(rows, "features", None)
    names = list(features) if features is not None else list(getattr(rows, "column_names", []))
    if column not in names:
        raise ValueError(
            f"cannot group by {column!r}: the split has no such column; its columns are {', '.join(names)}"
        )
    feature = features[column] if features is not None else None
    if feature is not None and type(feature).__name__ not in ("Value", "ClassLabel"):
        raise ValueError(
            f"cannot group by {column!r}: it holds {type(feature).__name__} values, not one label per row "
            "(group by a string or integer column, such as the demo's action)"
        )
    values = rows[column]
    if type(feature).__name__ == "ClassLabel":
        return [feature.int2str(int(value)) for value in values]
    return [str(value) for value in values]


def _checked_embeddings(embeddings: dict):
    missing = [key for key in ("text_embeds", "motion_embeds", "captions", "ids") if key not in embeddings]
    if missing:
        raise ValueError(f"embeddings lacks {', '.join(missing)}; pass embed_split's dict")
    text = np.asarray(embeddings["text_embeds"], dtype=np.float32)
    motion = np.asarray(embeddings["motion_embeds"], dtype=np.float32)
    if text.ndim != 2 or text.shape != motion.shape or len(text) == 0:
        raise ValueError(
            "text_embeds and motion_embeds must be non-empty (N, D) arrays of the same shape, text i describing "
            f"motion i; got {text.shape} and {motion.shape}"
        )
    for name, array in (("text_embeds", text), ("motion_embeds", motion)):
        if not np.isfinite(array).all():
            raise ValueError(
                f"{name} holds NaN or infinite values (rows {_preview(np.flatnonzero(~np.isfinite(array).all(1)))})"
            )
    captions = [str(caption) for caption in embeddings["captions"]]
    ids = [str(sample_id) for sample_id in embeddings["ids"]]
    if len(captions) != len(text) or len(ids) != len(text):
        raise ValueError(
            f"captions and ids need one entry per row: {len(text)} rows, {len(captions)} captions, {len(ids)} ids"
        )
    return text, motion, captions, ids


def _checked_k_values(k_values) -> tuple[int, ...]:
    values = tuple(k_values)
    if not values or not all(isinstance(k, (int, np.integer)) and k >= 1 for k in values):
        raise ValueError(f"k_values must be positive integers; got {k_values!r}")
    return tuple(int(k) for k in values)


def _same_caption_pairs(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (text, motion) pair whose captions are the same string, group by group: protocol "all"'s positives."""
    order = np.argsort(code, kind="stable")
    sizes = np.bincount(code)
    starts = np.cumsum(sizes) - sizes
    member_sizes = sizes[code[order]]  # each member of a group of size s pairs with the s members
    rows = np.repeat(order, member_sizes)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(member_sizes) - member_sizes, member_sizes)
    cols = order[np.repeat(starts[code[order]], member_sizes) + offsets]
    return rows, cols


def _best_other_caption(queries: np.ndarray, motion: np.ndarray, query_code, motion_code) -> np.ndarray:
    """For each text query, the best-scoring motion whose caption is not its own: what it found instead."""
    best = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), _CHUNK):
        sims = queries[start : start + _CHUNK] @ motion.T
        sims[query_code[start : start + _CHUNK, None] == motion_code[None, :]] = -np.inf
        best[start : start + _CHUNK] = sims.argmax(axis=1)
    return best


def _first_example(failed, instead, group_code, g, h) -> tuple[int, int]:
    """The first failed query of group g that retrieved a motion of group h, and that motion."""
    where = np.flatnonzero((group_code[failed] == g) & (group_code[instead] == h))[0]
    return int(failed[where]), int(instead[where])


def _group_table(group_names, group_code, sizes, t2m, m2t, failed, instead) -> list[dict]:
    instead_by_group = [Counter() for _ in group_names]
    within = np.zeros(len(group_names), dtype=np.int64)
    for q, r in zip(failed.tolist(), instead.tolist()):
        if group_code[q] == group_code[r]:
            within[group_code[q]] += 1
        else:
            instead_by_group[group_code[q]][group_code[r]] += 1
    table = []
    for g, name in enumerate(group_names):
        members = group_code == g
        # most often first; among equals, the first group name, so the table does not depend on row order
        top = min(instead_by_group[g].items(), key=lambda item: (-item[1], group_names[item[0]]), default=None)
        table.append(
            {
                "group": str(name),
                "queries": int(sizes[g]),
                "t2m/R@1": float(100.0 * np.mean(t2m[members] <= 1)),
                "m2t/R@1": float(100.0 * np.mean(m2t[members] <= 1)),
                "retrieved_instead": None if top is None else str(group_names[top[0]]),
                "retrieved_instead_count": 0 if top is None else top[1],
                "failed_within_group": int(within[g]),
            }
        )
    return sorted(table, key=lambda row: (row["t2m/R@1"], -row["queries"], row["group"]))


def _worst_queries(text, motion, captions, ids, caption_code, labels, t2m, worst, top_retrieved) -> list[dict]:
    """The failed text queries with the worst rank of a correct motion, one per distinct caption."""
    texts_per_caption = np.bincount(caption_code)
    chosen, seen = [], set()
    for q in sorted(np.flatnonzero(t2m > 1).tolist(), key=lambda q: (-t2m[q], q)):
        if len(chosen) == worst:
            break
        if caption_code[q] not in seen:
            seen.add(caption_code[q])
            chosen.append(q)
    entries = []
    for q in chosen:
        scores = motion @ text[q]
        top = np.argsort(-scores, kind="stable")[:top_retrieved]
        entries.append(
            {
                "index": q,
                "id": ids[q],
                "caption": captions[q],
                "group": labels[q],
                "rank": int(t2m[q]),  # of the best correct motion
                "texts_with_this_caption": int(texts_per_caption[caption_code[q]]),
                "true_motion": {
                    "index": q,
                    "id": ids[q],
                    "score": float(scores[q]),
                    "rank": int(1 + np.sum(scores > scores[q])),
                },
                "retrieved": [
                    {
                        "index": int(j),
                        "id": ids[j],
                        "caption": captions[j],
                        "group": labels[j],
                        "score": float(scores[j]),
                        "correct": bool(caption_code[j] == caption_code[q]),
                    }
                    for j in top
                ],
            }
        )
    return entries


# ----------------------------------------------------------------------------- report.md
def _cell(text) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _group_noun(report: dict) -> str:
    return "caption groups" if report["group_by"] == "caption" else f"groups of `{report['group_by']}`"


def report_markdown(report: dict, picture: str | None = "worst_queries.png") -> str:
    """The report as a markdown page: recall per query vs per group, confusions, the group table, the worst queries."""
    ks = report["k_values"]
    noun = _group_noun(report)
    lines = [
        "# Retrieval failure report",
        "",
        f"{report['num_queries']} text/motion pairs, protocol `all` (a motion whose first caption is the query's "
        f"own counts as correct), {report['num_groups']} {noun}. *Per query* averages over texts (or motions); "
        f"*macro* averages over groups the mean of each group's queries, so every group weighs the same.",
        "",
        "## Recall (%)",
        "",
        "| | " + " | ".join(f"R@{k}" for k in ks) + " |",
        "| --- |" + " ---: |" * len(ks),
    ]
    for direction in ("t2m", "m2t"):
        for kind in ("per_query", "macro"):
            values = " | ".join(f"{report[kind][f'{direction}/R@{k}']:.1f}" for k in ks)
            lines.append(f"| {direction} {'per query' if kind == 'per_query' else 'macro over groups'} | {values} |")
    confusion = report["left_right_confusion"]
    lines += [
        "",
        "Left/right: "
        + (
            "no caption names exactly one side."
            if confusion is None
            else f"{confusion:.1f}% of the texts naming one side retrieve first a motion whose caption names the other."
        ),
        "",
        "## Most confused groups",
        "",
        f"{report['failed_queries']} of the {report['num_queries']} text queries failed at rank 1"
        + (
            f"; {report['failed_within_group']} of them retrieved first another caption of their own group "
            "(the right label, wrong details). The others"
            if report["group_by"] != "caption"
            else ""
        )
        + ", by their group and the group of the motion they retrieved first instead:",
        "",
    ]
    if report["confused_pairs"]:
        lines += [
            "| query group | retrieved first instead | times | % of the group's texts |",
            "| --- | --- | ---: | ---: |",
        ]
        lines += [
            f"| {_cell(p['query_group'])} | {_cell(p['retrieved_group'])} | {p['count']} | {p['percent_of_group']:.0f} |"
            for p in report["confused_pairs"]
        ]
    else:
        lines.append("No text query retrieved first a motion of another group.")
    labels = report["group_by"] != "caption"  # with captions as groups no failure stays within its group
    lines += [
        "",
        f"## Groups, worst first ({report['group_by']})",
        "",
        "| group | texts | t2m R@1 | m2t R@1 | most often retrieved first instead (times) |"
        + (" failed within the group |" if labels else ""),
        "| --- | ---: | ---: | ---: | --- |" + (" ---: |" if labels else ""),
    ]
    for row in report["groups"]:
        instead = (
            ""
            if row["retrieved_instead"] is None
            else f"{_cell(row['retrieved_instead'])} ({row['retrieved_instead_count']})"
        )
        lines.append(
            f"| {_cell(row['group'])} | {row['queries']} | {row['t2m/R@1']:.1f} | {row['m2t/R@1']:.1f} | {instead} |"
            + (f" {row['failed_within_group']} |" if labels else "")
        )
    lines += ["", "## Worst text queries", "", "By the rank of their best correct motion; one text per caption.", ""]
    if report["worst_queries"]:
        lines += ["| rank | query | top retrieved (score) | true motion: rank, score |", "| ---: | --- | --- | --- |"]
        for entry in report["worst_queries"]:
            retrieved = "<br>".join(
                f"{'✓' if r['correct'] else '✗'} {_cell(r['caption'])} ({r['score']:.3f})" for r in entry["retrieved"]
            )
            true = entry["true_motion"]
            lines.append(
                f"| {entry['rank']} | {_cell(entry['caption'])} | {retrieved} | {_cell(true['id'])}: {true['rank']}, {true['score']:.3f} |"
            )
        if picture:
            lines += ["", f"![worst text queries]({picture})"]
    else:
        lines.append("No text query failed at rank 1.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- worst_queries.png
def _motion_of(motions, index: int) -> np.ndarray:
    """Motion `index` of a dataset split (its `motion` column) or of a sequence of (T, J, 3) arrays; the first
    person of a (T, P, J, 3) interaction."""
    item = motions[int(index)]
    array = np.asarray(item["motion"] if isinstance(item, dict) else item, dtype=np.float32)
    return array[:, 0] if array.ndim == 4 else array


def _font(size: int):
    return ImageFont.load_default(size=size)


def _wrapped(draw, text: str, font, width: int) -> list[str]:
    """Greedy word wrap to lines at most `width` pixels wide (a word longer than the line stays whole)."""
    lines, line = [], ""
    for word in str(text).split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line or not lines else lines


def worst_queries_picture(
    report: dict, motions, skeleton, num_queries: int = 4, num_keyframes: int = 3, size: int = 80
) -> Image.Image:
    """For each of the first `num_queries` worst text queries: the query, then its top retrieved motions and
    the true motion, each as a strip of `num_keyframes` poses under its caption and score (green: a correct
    caption, red: another one)."""
    entries = report["worst_queries"][:num_queries]
    column, gap, pad = num_keyframes * size, 10, 6
    title_font, font = _font(14), _font(11)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = font.getbbox("Ag")[3] + 3
    if not entries:
        picture = Image.new("RGB", (column * 2, 40), "white")
        ImageDraw.Draw(picture).text((pad, pad), "No text query failed at rank 1.", fill=_TEXT, font=title_font)
        return picture
    columns = 1 + max(len(entry["retrieved"]) for entry in entries)
    width = columns * column + (columns - 1) * gap + 2 * pad
    blocks = []
    for entry in entries:
        texts = entry["texts_with_this_caption"]
        title = f'"{entry["caption"]}"  (best correct motion at rank {entry["rank"]}; {texts} text{"s" * (texts > 1)})'
        title_lines = _wrapped(scratch, title, title_font, width - 2 * pad)
        panels = [
            (
                f"#{rank}: {r['score']:.3f}, {'correct' if r['correct'] else 'wrong'}",
                r["caption"],
                r["index"],
                _GREEN if r["correct"] else _RED,
            )
            for rank, r in enumerate(entry["retrieved"], start=1)
        ]
        true = entry["true_motion"]
        panels.append((f"true motion, #{true['rank']}: {true['score']:.3f}", entry["caption"], true["index"], _GREY))
        captions = [_wrapped(scratch, caption, font, column - 4)[:3] for _, caption, _, _ in panels]
        text_height = (1 + max(len(lines) for lines in captions)) * line_height
        title_height = len(title_lines) * (title_font.getbbox("Ag")[3] + 4) + pad
        block = Image.new("RGB", (width, title_height + text_height + size + 2 * pad), "white")
        draw = ImageDraw.Draw(block)
        for i, line in enumerate(title_lines):
            draw.text((pad, pad + i * (title_font.getbbox("Ag")[3] + 4)), line, fill=_TEXT, font=title_font)
        for i, ((header, _, index, colour), lines) in enumerate(zip(panels, captions)):
            left, top = pad + i * (column + gap), title_height
            draw.text((left, top), header, fill=colour, font=font)
            for j, line in enumerate(lines):
                draw.text((left, top + (j + 1) * line_height), line, fill=_TEXT, font=font)
            strip = keyframe_strip(_motion_of(motions, index), skeleton, num_keyframes, size)
            block.paste(strip, (left, title_height + text_height))
            draw.rectangle(
                [left - 1, title_height + text_height - 1, left + column, title_height + text_height + size],
                outline=colour,
            )
        draw.line([(0, block.height - 1), (width, block.height - 1)], fill=(200, 200, 200))
        blocks.append(block)
    picture = Image.new("RGB", (width, sum(block.height for block in blocks)), "white")
    top = 0
    for block in blocks:
        picture.paste(block, (0, top))
        top += block.height
    return picture


def write_report(report: dict, motions, out_dir, skeleton, num_pictured: int = 4) -> list[str]:
    """Write `report.json`, `report.md` and `worst_queries.png` into `out_dir` (created if missing) and return
    their paths.

    motions: the split the report was made on (a dataset with a `motion` column, or a sequence of (T, J, 3)
    arrays), indexed by the report's row indices; skeleton: theirs, for the picture.
    Everything is rendered in memory first; each file then replaces its previous version whole, `report.json`
    last, so a report.json beside the others means they are all of this report.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"report folder {out_dir} is a file; give a folder (it is created if missing)")
    picture = io.BytesIO()
    worst_queries_picture(report, motions, skeleton, num_pictured).save(picture, format="PNG")
    contents = {
        "worst_queries.png": picture.getvalue(),
        "report.md": report_markdown(report).encode("utf-8"),
        "report.json": json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"),
    }
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in REPORT_FILES:
        path = os.path.join(out_dir, name)
        with atomic_path(path) as temporary, open(temporary, "wb") as f:
            f.write(contents[name])
        paths.append(path)
    return paths


def _preview(items, limit: int = 10) -> str:
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
