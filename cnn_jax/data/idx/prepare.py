"""Where the IDX files of `mnist` and `fashion_mnist` are looked for, and preparing from them.

The folder named by `data.idx_dir`, else (Fashion-MNIST only) the folder Debian's
`dataset-fashion-mnist` package installs. A dataset already prepared in the TFDS
data_dir is used as it is, however it got there (an earlier run, or TFDS's own
download on a machine with network). Otherwise, without the files, the run stops
with a sentence saying how to get them rather than trying a download that cannot
finish offline.
"""

import pathlib

import tensorflow_datasets as tfds

from cnn_jax.data.idx.builders import BUILDERS
from cnn_jax.data.idx.idx_files import ALL_FILES, missing_files
from cnn_jax.data.records import PREPARED_FORMAT
from cnn_jax.errors import UserError

IDX_DATASETS = tuple(BUILDERS)
DEBIAN_FOLDERS = {"fashion_mnist": pathlib.Path("/usr/share/datasets/fashion-mnist")}
DEBIAN_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


def idx_folder(name: str, idx_dir: str = "") -> pathlib.Path | None:
    """The folder to read `name`'s IDX files from: `idx_dir` if given, else the Debian one."""
    if idx_dir:
        return pathlib.Path(idx_dir).expanduser()
    return DEBIAN_FOLDERS.get(name)


def what_is_missing(folder: pathlib.Path | None) -> str:
    """ "" when `folder` holds the four files, else what is wrong, as a clause."""
    if folder is None:
        return "data.idx_dir is empty"
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    missing = missing_files(folder)
    if len(missing) == len(ALL_FILES):
        return f"{folder} holds none of them"
    return f"{folder} lacks {', '.join(missing)}" if missing else ""


def missing_files_message(name: str, problem: str) -> str:
    """One sentence: the files, what is wrong, and the ways to provide them."""
    files = ", ".join(f"{stem}.gz" for stem in ALL_FILES[:-1]) + f" and {ALL_FILES[-1]}.gz"
    package = DEBIAN_PACKAGES.get(name)
    install = f"run `apt-get install {package}` or " if package else ""
    return (
        f"Dataset {name!r} is read offline from its IDX files ({files}, gzipped or not), but {problem}; "
        f"{install}put the four files in a folder and set --config.data.idx_dir to it."
    )


def prepare_from_idx(name: str, data_dir: str, idx_dir: str = "") -> None:
    """Prepare `name` ("mnist" or "fashion_mnist") in `data_dir` from local IDX files,
    unless it is prepared there already. Raises UserError for missing or damaged files."""
    prepared = tfds.builder(name, data_dir=data_dir)
    if prepared.data_path.exists() and prepared.is_prepared():  # the first test alone logs a warning
        return
    folder = idx_folder(name, idx_dir)
    problem = what_is_missing(folder)
    if problem:
        raise UserError(missing_files_message(name, problem))
    BUILDERS[name](data_dir=data_dir, idx_folder=folder).download_and_prepare(file_format=PREPARED_FORMAT)
