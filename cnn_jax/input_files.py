"""Files and folders a user names, checked before any work starts: Python files (configs,
suites, sweeps), image folders, weight files and workdirs.

A Python file's syntax or import error is reported as "FILE line N: what; fix the file." rather
than as a traceback; the other checks return sentences, so that a caller can report every
problem it finds at once.
"""

import importlib.util
import json
import os
import pathlib
import traceback

from cnn_jax.errors import UserError

WEIGHT_SUFFIXES = (".h5", ".keras", ".safetensors", ".pth", ".pt")  # cnn_jax/train/transfer.py reads these


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).rstrip(".")


def _line_in(error: BaseException, file: pathlib.Path) -> int | None:
    """The line of `file` that the error's traceback last passed through."""
    target = os.path.abspath(file)
    lines = [
        frame.lineno for frame in traceback.extract_tb(error.__traceback__) if os.path.abspath(frame.filename) == target
    ]
    return lines[-1] if lines else None


def file_error(path, error: BaseException) -> UserError:
    """A UserError naming the file and line where `error` arose in it."""
    file = pathlib.Path(path)
    if isinstance(error, SyntaxError) and os.path.abspath(error.filename or "") == os.path.abspath(file):
        return UserError(f"{path} line {error.lineno}: {_one_line(error.msg)}; fix the file.")
    line = _line_in(error, file)
    where = f"{path} line {line}" if line else str(path)
    return UserError(f"{where}: {type(error).__name__}: {_one_line(error)}; fix the file.")


def load_python_file(path, module_name: str = ""):
    """Execute a Python file the user wrote and return it as a module."""
    file = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(module_name or f"_cnn_jax_file_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (anything a file can raise is the file's to fix)
        raise file_error(path, e) from None
    return module


def check_config_file(path: str, arg: str | None) -> None:
    """Run a config file's get_config(arg) as ml_collections will, so that its mistakes, and its
    argument's, are named by file and line before the config is parsed."""
    module = load_python_file(path, f"_cnn_jax_config_{pathlib.Path(path).stem}")
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise UserError(
            f"{path} defines no get_config(arg); a config file returns its ConfigDict from one (see configs/lenet5.py)."
        )
    try:
        config = get_config(arg) if arg is not None else get_config()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise file_error(path, e) from None
    if not hasattr(config, "keys"):
        raise UserError(
            f"{path}: get_config returned {type(config).__name__}, not a ConfigDict; return "
            "cnn_jax.config.base_config() with the recipe's values set."
        )


def unusable_path(what: str, value: str) -> list:
    """A path the file system cannot even look up (too long, a NUL byte, no permission to search)."""
    try:
        os.stat(pathlib.Path(value).expanduser())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except (OSError, ValueError) as e:
        return [
            f"{what} {_shown(value)} is not a usable path ({_one_line(getattr(e, 'strerror', None) or e)}); "
            "pass another."
        ]
    return []


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def looks_like_path(name: str) -> bool:
    """A dataset name is a folder when it has a slash or names an existing folder (as open_source
    decides); a name the file system cannot look up is checked as a path, to be refused as one."""
    return "/" in name or bool(unusable_path("dataset", name)) or pathlib.Path(name).expanduser().is_dir()


def image_folder_problems(name: str) -> list:
    root = pathlib.Path(name).expanduser()
    if unusable_path("dataset", name):
        return unusable_path("dataset", name)
    if not root.is_dir():
        return [f"Image folder {name!r} does not exist; pass an existing folder or a TFDS name as --config.dataset."]
    if not (root / "train").is_dir():
        return [
            f"Image folder {name!r} has no train/ subfolder; lay it out as train/CLASS/*.jpg with "
            "val/CLASS/*.jpg (or test/) beside it."
        ]
    if not any(p.is_dir() for p in (root / "train").iterdir()):
        return [f"Image folder {str(root / 'train')!r} has no class subfolders; lay it out as train/CLASS/*.jpg."]
    return []


def folder_problems(key: str, value: str, must_exist: bool) -> list:
    """A folder the config names (data_dir, data.idx_dir): not a file; existing if `must_exist`."""
    if not value or unusable_path(key, value):
        return unusable_path(key, value) if value else []
    path = pathlib.Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return [f"{key} {value!r} is a file, not a folder; fix --config.{key}."]
    if must_exist and not path.exists():
        return [f"{key} {value!r} does not exist; pass an existing folder as --config.{key}."]
    return []


def weights_problems(key: str, value: str) -> list:
    """A workdir with checkpoints or a weights file, as transfer.init_from takes."""
    if not value or unusable_path(key, value):
        return unusable_path(key, value) if value else []
    path = pathlib.Path(value).expanduser()
    if not path.exists():
        return [f"{key} {value!r} does not exist; pass a workdir or a weights file."]
    if path.is_dir():
        if not (path / "checkpoints").is_dir():
            return [f"{key} {value!r} is a folder without checkpoints/; pass the --workdir of a trained run."]
        return []
    if path.suffix not in WEIGHT_SUFFIXES:
        return [
            f"{key} {value!r} is neither a workdir nor a {'/'.join(WEIGHT_SUFFIXES)} weights file; pass one of those."
        ]
    return []


def workdir_path_problems(workdir: str, flag: str = "--workdir") -> list:
    """A folder a command will create or write into: not a file, under folders, writable."""
    if not str(workdir).strip():
        return [f"{flag} is empty; pass the folder to write into, e.g. {flag} runs/NAME."]
    if unusable_path(flag, workdir):
        return unusable_path(flag, workdir)
    path = pathlib.Path(workdir).expanduser()
    if path.exists() and not path.is_dir():
        return [f"{flag} {workdir} is a file; pass a folder (it is created when missing)."]
    existing = next(p for p in [path, *path.absolute().parents] if p.exists())
    if not existing.is_dir():
        return [f"{flag} {workdir} lies under {existing}, which is a file; pass a folder path."]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"{flag} {workdir} cannot be written ({existing} is not writable); pass a folder you can write."]
    return []


def workdir_run_problems(workdir: str, resolved: dict, allow_change: bool) -> list:
    """A workdir that holds a run: its config.json must be readable and, unless the user allows
    the change, the same config (cnn_jax.config.config_differences, as the training loop checks)."""
    saved = pathlib.Path(workdir).expanduser() / "config.json"
    if not saved.is_file():
        return []
    try:
        old = json.loads(saved.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [f"{saved} is unreadable ({_one_line(e)}); move the workdir away or pass another --workdir."]
    from cnn_jax.config import config_differences

    diff = config_differences(old, resolved) if isinstance(old, dict) else ["config.json"]
    if diff and not allow_change:
        return [
            f"Workdir {workdir} holds a run of a different config (differs in {', '.join(diff[:5])}"
            f"{'...' if len(diff) > 5 else ''}); use a new --workdir, or pass --allow-config-change to "
            "continue it with the new config."
        ]
    return []


def raise_problems(problems: list) -> None:
    """One UserError stating every problem, one sentence each."""
    if problems:
        raise UserError(" ".join(problems))
