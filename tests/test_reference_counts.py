"""Every model with figures in reference.json has its parameter and MAC counts checked
exactly (`model_checks.check_params_and_macs`, zero tolerance) by some test."""

from test_models_classic import CLASSIC
from test_models_lenet_resnet import REFERENCED
from test_models_modern import NAMES

from cnn_jax import models
from cnn_jax.models.registry import reference_numbers

# Checked exactly by their own files' tests, with more figures than the two totals.
ELSEWHERE = {
    "googlenet_tv": "test_torchvision_variants.py",
    **{
        name: "test_densenet_cifar.py"
        for name in (
            "densenet40_k12",
            "densenet100_k12",
            "densenet_bc100_k12",
            "densenet_bc250_k24",
            "densenet_bc190_k40",
        )
    },
}


def test_every_referenced_model_has_an_exact_count_check():
    checked = set(CLASSIC) | set(REFERENCED) | set(NAMES) | set(ELSEWHERE)
    referenced = set(reference_numbers())
    assert referenced <= set(models.list_models())
    assert not referenced - checked, f"no exact count check: {sorted(referenced - checked)}"
    assert not (set(CLASSIC) | set(REFERENCED) | set(NAMES)) - referenced
