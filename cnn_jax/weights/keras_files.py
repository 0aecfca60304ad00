"""Build a `keras.applications` model from a saved Keras file.

A `.weights.h5`, `.keras` or Keras 2 `.h5` file is loaded into the application that
`keras_import.keras_application` names, built with the file's class count. Keras (and
h5py, for an `.h5` file's class count) is imported only here, when a file is given.
"""

import json
import pathlib
import re
import zipfile

from cnn_jax.weights.keras_import import KerasImportError, keras_application


def keras_model_from_file(model_name: str, path, num_classes: int | None = None):
    """The Keras application for `model_name` with the weights of a saved file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise KerasImportError(
            f"No Keras weights file at {path}; give the path of a `.weights.h5`, `.keras` or `.h5` file."
        )
    if path.suffix not in (".h5", ".keras"):
        raise KerasImportError(
            f"{path.name} is not a Keras weights file; Keras saves them as `.weights.h5`, `.keras` or (Keras 2) `.h5`."
        )
    try:
        import keras
    except ImportError:
        raise KerasImportError(
            "Loading a Keras file needs Keras 3: `pip install keras h5py`, or pass a live keras.Model."
        ) from None
    classes = num_classes or saved_num_classes(path) or 1000
    build = getattr(keras.applications, keras_application(model_name))
    # Keras would draw a random value for every variable (on JAX, one XLA compile per
    # shape: ~10 s a model) only for load_weights to overwrite it; a StatelessScope
    # defers those initialisations, and load_weights assigns every variable.
    with keras.StatelessScope():
        model = build(weights=None, classes=classes, classifier_activation=None)
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as e:
        raise KerasImportError(
            f"{path.name} does not hold keras.applications."
            f"{keras_application(model_name)} weights with {classes} classes "
            f"(pass num_classes= if it has another count): {e}"
        ) from None
    return model


def saved_num_classes(path: pathlib.Path) -> int | None:
    """The class count of a saved Keras application's classifier, None if not found."""
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        for layer in config.get("config", {}).get("layers", []):
            units = layer.get("config", {}).get("units") or layer.get("config", {}).get("filters")
            if layer.get("name") in ("predictions", "conv_preds") and units:
                return int(units)
        return None
    import h5py

    with h5py.File(path, "r") as f:
        if "layers" in f:
            # Keras 3 names groups by class and creation count: the classifier is the
            # last Dense (or MobileNet's last Conv2D); its vars/1 is the bias.
            groups = f["layers"]
            for prefix in ("dense", "conv2d"):
                counters = {int(m[1] or 0): n for n in groups if (m := re.fullmatch(rf"{prefix}(?:_(\d+))?", n))}
                if counters:
                    bias = groups[counters[max(counters)]].get("vars/1")
                    return None if bias is None else int(bias.shape[0])
            return None
        root = f.get("model_weights", f)  # Keras 2: groups named like the layers
        for name in ("predictions", "conv_preds"):  # MobileNet's "predictions" has no weights
            found = []
            if name in root:
                root[name].visititems(
                    lambda n, d, found=found: (
                        found.append(d.shape) if hasattr(d, "shape") and len(d.shape) == 1 else None
                    )
                )
            if found:
                return int(found[0][0])
    return None
