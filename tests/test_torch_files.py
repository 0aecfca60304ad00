"""What a `.pth` file may hold before we read it: tensors only.

A pickle that would run code is refused before it is unpickled; without torch a `.pth`
gets a sentence saying how to read it; with torch (`slow`), objects beyond tensors are
refused by torch's weights-only loader or by our own scan first.
"""

import collections
import pickle
import sys
import zipfile

import pytest
from test_torch_logits import torchvision_model

from cnn_jax.weights import torch_import as ti


class Opens:
    """A pickle that, if unpickled, would create a file: what a malicious .pth would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("wrap", ["raw", "zip"])
def test_a_pickle_that_runs_code_is_refused_unread(tmp_path, protocol, wrap):
    marker = tmp_path / "pwned"
    data = pickle.dumps(collections.OrderedDict(w=Opens(marker)), protocol=protocol)
    path = tmp_path / "evil.pth"
    if wrap == "zip":  # torch.save's layout: <name>/data.pkl beside the raw tensors
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", data)
    else:
        path.write_bytes(data)
    with pytest.raises(
        ti.TorchImportError,
        match=r"^Refusing evil\.pth: unpickling it would "
        r"import (io|builtins)\.open",
    ):
        ti.load_torchvision_weights("resnet18", path)
    assert not marker.exists()


def test_pth_without_torch_says_how_to_read_it(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    path.write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    with pytest.raises(
        ti.TorchImportError,
        match=r"needs PyTorch: `pip install torch`, or "
        r"convert the file to \.safetensors",
    ):
        ti.load_torchvision_weights("resnet18", path)


@pytest.mark.slow
def test_pth_of_objects_is_refused_by_torchs_weights_only_loader(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"fc": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")  # passes our import scan
    with pytest.raises(
        ti.TorchImportError,
        match=r"^Refusing module\.pth: it holds pickled "
        r"objects beyond tensors \(torch\.nn\.modules",
    ):
        ti.load_torchvision_weights("resnet18", tmp_path / "module.pth")
    torch.save(torchvision_model("resnet18"), tmp_path / "model.pth")  # caught by our scan
    with pytest.raises(ti.TorchImportError, match=r"import torchvision\.models\.resnet\.Basic"):
        ti.load_torchvision_weights("resnet18", tmp_path / "model.pth")
