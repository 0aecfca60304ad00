"""Like-for-like deltas: whether one evaluation of a run may be set against a published
number, and, when it may not, what differs (the text the Δ cell shows instead).

A published number is a dict:

    {"top1": %, "top5": %, "protocol": "center" | "10crop" | "dense" | "multi-model" | "unstated",
     "input_size": px, "split": "validation" | "test" | a subset's description,
     "dataset": TFDS name, "models": 1, "selection": e.g. "best of 5 runs", "source": text}

Only `top1` is needed. A number without a `protocol` counts as "unstated" and gets no Δ:
a centre-crop result is a few points below a 10-crop or dense one of the same network, so
setting one against the other would read as a reproduction gap that is not there.
"""

from cnn_jax.errors import UserError

PROTOCOL_LABELS = {
    "center": "centre crop",
    "10crop": "10-crop",
    "dense": "dense",
    "multi-model": "multi-model",
    "unstated": "not stated",
}
# Split names that mean a dataset's whole evaluation split; anything else names a subset.
FULL_SPLITS = {"validation": "validation", "val": "validation", "test": "test"}


def normalise(published: dict | None) -> dict:
    """The published dict with its defaults (protocol "unstated", one model), checked."""
    published = dict(published or {})
    published.setdefault("protocol", "unstated")
    published.setdefault("models", 1)
    if published["protocol"] not in PROTOCOL_LABELS:
        raise UserError(
            f"Published protocol {published['protocol']!r} is unknown; use one of {', '.join(PROTOCOL_LABELS)}."
        )
    return published


def protocol_label(published: dict | None) -> str | None:
    """The paper's evaluation in a few words, for the table's "paper eval" column."""
    if not published or published.get("top1") is None and published.get("top5") is None:
        return None
    p = normalise(published)
    if p["protocol"] == "multi-model" or int(p["models"]) > 1:
        return f"{p['models']} models" if int(p["models"]) > 1 else "multi-model"
    return PROTOCOL_LABELS[p["protocol"]]


def _canonical_split(name) -> str | None:
    return FULL_SPLITS.get(str(name).strip().lower()) if name else None


def difference(published: dict, run: dict) -> str | None:
    """What keeps `run`'s evaluation from being set against `published`, as a short text
    ("other dataset (mnist)", "paper: 10-crop", ...); None when the two are alike.

    `run` has the evaluation's `dataset`, `protocol`, `input_size` and `split`; an unknown
    (None) field of the run is not held against it, except the protocol, which is always known.
    """
    p = normalise(published)
    if p.get("dataset") and run.get("dataset") and p["dataset"] != run["dataset"]:
        return f"other dataset ({p['dataset']})"
    if p["protocol"] == "multi-model" or int(p["models"]) > 1:
        return f"paper: {p['models']} models" if int(p["models"]) > 1 else "paper: multi-model"
    if p["protocol"] == "unstated":
        return "paper: protocol not stated"
    if p["protocol"] != run.get("protocol"):
        return f"paper: {PROTOCOL_LABELS[p['protocol']]}"
    if p.get("input_size") and run.get("input_size") and int(p["input_size"]) != int(run["input_size"]):
        return f"paper: {p['input_size']} px"
    if p.get("split"):
        ours, theirs = _canonical_split(run.get("split")), _canonical_split(p["split"])
        if theirs is None:
            return f"paper: {p['split']}"
        if ours is not None and ours != theirs:
            return f"paper: {theirs} split"
    if p.get("selection"):
        return f"paper: {p['selection']}"
    return None


def reference_protocol(text: str | None) -> str:
    """The protocol named in reference.json's `paper_eval_protocol` free text."""
    text = (text or "").lower()
    if "not stated" in text:
        return "unstated"
    if "10-crop" in text:
        return "10crop"
    if "dense" in text:
        return "dense"
    if any(words in text for words in ("single crop", "single 224 crop", "single 299", "1 crop", "1-crop")):
        return "center"
    return "unstated"


def from_reference(reference: dict) -> dict | None:
    """A published dict from a model's reference.json entry (its paper's ImageNet number), for
    runs that are not part of a suite."""
    if reference.get("paper_top1") is None and reference.get("paper_top5") is None:
        return None
    text = reference.get("paper_eval_protocol") or ""
    return {
        "top1": reference.get("paper_top1"),
        "top5": reference.get("paper_top5"),
        "dataset": "imagenet2012",
        "protocol": reference_protocol(text),
        "input_size": reference.get("input_size"),
        "split": "non-blacklisted validation subset" if "blacklisted" in text.lower() else "validation",
        "models": 1,
        "source": text,
    }
