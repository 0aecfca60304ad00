"""Reading the four IDX files of MNIST and Fashion-MNIST, gzipped or plain.

IDX layout (LeCun's MNIST page): two zero bytes, a dtype byte (0x08 = uint8), a byte
with the number of dimensions, each dimension as a big-endian int32, then the data in
C order. Images are (N, 28, 28), labels (N,). Every check here turns a damaged file
into one sentence naming the file, since TFDS would otherwise fail deep inside its
writer with a reshape error.
"""

import gzip
import pathlib
import zlib

import numpy as np

from cnn_jax.errors import UserError

IMAGE_SIDE = 28
NUM_CLASSES = 10
UINT8 = 0x08
# Each split's (images, labels) files, as the datasets' authors name them.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = tuple(stem for pair in SPLIT_FILES.values() for stem in pair)


def file_path(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    """The gzipped file if present, else the uncompressed one, else None."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: pathlib.Path) -> list:
    """The stems among the four that `folder` holds in neither form."""
    return [stem for stem in ALL_FILES if file_path(folder, stem) is None]


def _corrupt(path: pathlib.Path, problem: str) -> UserError:
    return UserError(
        f"IDX file {path} is corrupt or truncated ({problem}); replace it with an intact copy of the file."
    )


def read_bytes(path: pathlib.Path) -> bytes:
    """The file's content, gunzipped when it is gzip (by its magic bytes, not its name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt(path, f"gzip: {e}") from None


def parse_idx(data: bytes, path: pathlib.Path, ndim: int) -> np.ndarray:
    """An IDX byte string of `ndim` uint8 dimensions as an array; `path` names it in errors."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise _corrupt(path, "no IDX header")
    if data[2] != UINT8:
        raise _corrupt(path, f"data type byte 0x{data[2]:02x}, expected 0x08 for uint8")
    if data[3] != ndim:
        raise _corrupt(path, f"{data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(path, "header cut short")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", ndim, offset=4))
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise _corrupt(
            path,
            f"header says {'x'.join(map(str, dims))} = {expected:,} bytes of data, the file has {len(data) - header:,}",
        )
    return np.frombuffer(data, np.uint8, expected, offset=header).reshape(dims)


def read_split(folder: pathlib.Path, split: str) -> tuple:
    """(images uint8 [N, 28, 28, 1], labels int64 [N]) of `split` ("train" or "test")."""
    image_path, label_path = (file_path(folder, stem) for stem in SPLIT_FILES[split])
    images = parse_idx(read_bytes(image_path), image_path, ndim=3)
    labels = parse_idx(read_bytes(label_path), label_path, ndim=1)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise _corrupt(
            image_path, f"images are {images.shape[1]}x{images.shape[2]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
        )
    if len(images) != len(labels):
        raise _corrupt(label_path, f"{len(labels):,} labels for the {len(images):,} images of {image_path.name}")
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise _corrupt(label_path, f"label {labels.max()}, expected 0-{NUM_CLASSES - 1}")
    return images[..., None], labels.astype(np.int64)
