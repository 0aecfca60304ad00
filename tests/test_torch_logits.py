"""Our logits equal torchvision's for the same random weights (`slow`; skipped without
torch and torchvision), as max |ours - torch| / max |torch|.
"""

import jax
import numpy as np
import pytest
from test_torch_import import RTOL, random_state

from cnn_jax.weights import torch_import as ti


def trained_like(state: dict) -> dict:
    """Random standard-normal values rescaled like a trained network's, so that activations
    stay O(1) through the stack and predictions depend on the input."""
    scaled = {}
    for key, value in state.items():
        leaf = key.rpartition(".")[2]
        if value.ndim > 1:  # He-normal
            value = value * np.sqrt(2.0 / np.prod(value.shape[1:]))
        elif leaf in ("weight", "running_var"):
            value = np.abs(value) * 0.5 + 0.5
        elif leaf != "num_batches_tracked":
            value = value * 0.1
        scaled[key] = np.asarray(value)
    return scaled


def torchvision_model(architecture, seed=0, **kwargs):
    """torchvision's model with random weights and BatchNorm statistics."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    kwargs.setdefault("num_classes", 10)
    if architecture in ("inception_v3", "googlenet"):
        kwargs.update(init_weights=False, transform_input=False)
    model = getattr(torchvision.models, architecture)(weights=None, **kwargs).eval()
    state = trained_like(random_state({k: tuple(v.shape) for k, v in model.state_dict().items()}, seed))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def relative_logit_difference(model, module, variables, size, batch=2) -> float:
    import torch

    x = np.random.default_rng(1).uniform(-1.0, 1.0, (batch, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    ours = np.asarray(jax.jit(lambda v, y: module.apply(v, y, train=False))(variables, x.transpose(0, 2, 3, 1)))
    assert ours.shape == theirs.shape and np.abs(theirs).max() > 1e-3
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.slow
def test_resnet18_pth_logits_equal_torchvision(tmp_path):
    torch = pytest.importorskip("torch")
    model = torchvision_model("resnet18")
    torch.save(model.state_dict(), tmp_path / "new.pth")
    torch.save(model.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    module, variables = ti.load_torchvision_weights("resnet18", tmp_path / "new.pth")
    rel = relative_logit_difference(model, module, variables, 224)
    print(f"resnet18: max relative logit difference {rel:.2e}")
    assert rel < RTOL
    _, old = ti.load_torchvision_weights("resnet18", tmp_path / "old.pth")
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(variables)))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["alexnet_owt", "vgg11_bn", "densenet121", "resnet50_v1_5", "densenet161"])
def test_logits_equal_torchvision(model_name):
    model = torchvision_model(ti.torchvision_architecture(model_name))
    module, variables = ti.load_torchvision_weights(model_name, model.state_dict())
    rel = relative_logit_difference(model, module, variables, 224)
    print(f"{model_name}: max relative logit difference {rel:.2e}")
    assert rel < RTOL


@pytest.mark.slow
def test_inception_v3_logits_equal_torchvision_with_its_average_pools():
    model = torchvision_model("inception_v3")
    module, variables = ti.load_torchvision_weights("inception_v3", model.state_dict())
    rel = relative_logit_difference(model, module, variables, 299, batch=1)
    print(f"inception_v3: max relative logit difference {rel:.2e}")
    assert rel < RTOL
    keras_pools = module.clone(pool_count_include_pad=False)  # the padding left out of the mean
    rel = relative_logit_difference(model, keras_pools, variables, 299, batch=1)
    print(f"inception_v3: {rel:.2e} when our pools exclude the padding (Keras)")
    assert rel > 1e-3


@pytest.mark.slow
def test_googlenet_tv_logits_equal_torchvision():
    model = torchvision_model("googlenet", aux_logits=True)
    module, variables = ti.load_torchvision_weights("googlenet_tv", model.state_dict())
    assert module.aux_logits
    rel = relative_logit_difference(model, module, variables, 224)
    print(f"googlenet_tv: max relative logit difference {rel:.2e}")
    assert rel < RTOL
