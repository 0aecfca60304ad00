"""Dataset sources: a TFDS name, the embedded `digits`, `imagenet2012` (manual download),
`mnist` and `fashion_mnist` (from local IDX files, see `idx/`) or a folder of images in
ImageNet layout, all as one `Source`."""

import contextlib
import dataclasses
import fcntl
import os
import pathlib
import sys

# TFDS 4.9.10 needs importlib_resources to prepare on-disk builders; it is a declared
# dependency, and this shim covers an environment that lacks it.
try:
    import importlib_resources  # noqa: F401
except ImportError:  # pragma: no cover
    import importlib.resources

    sys.modules.setdefault("importlib_resources", importlib.resources)

import tensorflow_datasets as tfds  # noqa: E402

from cnn_jax.data.idx import IDX_DATASETS, prepare_from_idx  # noqa: E402
from cnn_jax.data.records import PREPARED_FORMAT  # noqa: E402
from cnn_jax.errors import UserError, did_you_mean  # noqa: E402

EVAL_SPLIT_NAMES = ("validation", "val", "test")
IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".JPEG", ".JPG", ".PNG"}


@dataclasses.dataclass
class Source:
    name: str
    builder: object  # a tfds DatasetBuilder (ImageFolder included)
    train_split: str
    eval_split: str
    num_classes: int
    num_train: int
    num_eval: int
    image_shape: tuple  # (H, W, C); H, W None when sizes vary
    folder: str = ""  # the root of an image folder, "" for TFDS datasets

    @property
    def is_folder(self) -> bool:
        return bool(self.folder)


def default_data_dir(data_dir: str) -> str:
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


@contextlib.contextmanager
def _prepare_lock(data_dir: str):
    """One process prepares a dataset at a time (test workers, hosts sharing a disk)."""
    pathlib.Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(pathlib.Path(data_dir) / ".cnn_jax_prepare.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pick_eval_split(splits, requested: str, name: str) -> str:
    if requested:
        if requested not in splits:
            raise UserError(f"Dataset {name!r} has no split {requested!r}; it has {', '.join(sorted(splits))}.")
        return requested
    for candidate in EVAL_SPLIT_NAMES:
        if candidate in splits:
            return candidate
    raise UserError(
        f"Dataset {name!r} has no validation or test split (it has {', '.join(sorted(splits))}); "
        "set --config.eval_split."
    )


def _check_imagenet_archives(data_dir: str) -> None:
    manual = pathlib.Path(data_dir) / "downloads" / "manual"
    prepared = pathlib.Path(data_dir) / "imagenet2012"
    if prepared.exists():
        return
    if not any((manual / f).exists() for f in IMAGENET_ARCHIVES):
        raise UserError(
            f"ImageNet archives not found: put {' and '.join(IMAGENET_ARCHIVES)} (from image-net.org) "
            f"in {manual} and run again."
        )


def _folder_builder(root: pathlib.Path):
    if not (root / "train").is_dir():
        raise UserError(
            f"Image folder {str(root)!r} has no train/ subfolder; lay it out as "
            "train/CLASS/*.jpg with val/CLASS/*.jpg (or test/) beside it."
        )
    if not any(p.suffix in IMAGE_SUFFIXES for p in (root / "train").glob("*/*")):
        raise UserError(
            f"Image folder {str(root / 'train')!r} holds no images in class subfolders; "
            "lay it out as train/CLASS/*.jpg."
        )
    return tfds.ImageFolder(str(root))


def open_source(
    name: str, data_dir: str = "", train_split: str = "train", eval_split: str = "", idx_dir: str = ""
) -> Source:
    """Resolve a dataset name or folder into a prepared TFDS builder and its splits.
    `idx_dir`: the folder of the IDX files of `mnist` or `fashion_mnist` (idx/prepare.py)."""
    path = pathlib.Path(name).expanduser()
    if "/" in name or path.is_dir():
        if not path.is_dir():
            raise UserError(f"Image folder {name!r} does not exist; pass an existing folder or a TFDS name.")
        builder, folder = _folder_builder(path), str(path)
    else:
        data_dir = default_data_dir(data_dir)
        if name == "digits":
            import cnn_jax.data.digits  # noqa: F401  (registers the builder)
        if name not in tfds.list_builders():
            raise UserError(
                f"Unknown dataset {name!r}{did_you_mean(name, tfds.list_builders())}; "
                "pass a TFDS name or the path of an image folder."
            )
        if name == "imagenet2012":
            _check_imagenet_archives(data_dir)
        with _prepare_lock(data_dir):
            try:
                if name in IDX_DATASETS:
                    prepare_from_idx(name, data_dir, idx_dir)
                else:
                    tfds.builder(name, data_dir=data_dir).download_and_prepare(file_format=PREPARED_FORMAT)
            except UserError:
                raise
            except Exception as e:
                raise UserError(
                    f"Could not prepare dataset {name!r} in {data_dir}: {str(e).splitlines()[0]}; "
                    "check the network or the manual-download files."
                ) from None
        # A builder made before another process finished preparing would keep empty splits.
        builder, folder = tfds.builder(name, data_dir=data_dir), ""
    splits = builder.info.splits
    if train_split not in splits:
        raise UserError(f"Dataset {name!r} has no split {train_split!r}; it has {', '.join(sorted(splits))}.")
    eval_name = _pick_eval_split(splits, eval_split, name)
    features = builder.info.features
    image_key = "image" if "image" in features else list(features)[0]
    return Source(
        name=name,
        builder=builder,
        train_split=train_split,
        eval_split=eval_name,
        num_classes=features["label"].num_classes,
        num_train=splits[train_split].num_examples,
        num_eval=splits[eval_name].num_examples,
        image_shape=tuple(features[image_key].shape),
        folder=folder,
    )
