"""summary, bench and the command dispatcher."""

import json

import pytest

from cnn_jax import models
from conftest import run_cli


@pytest.mark.parametrize("name", ["lenet5", "resnet50", "googlenet", "vgg11_lrn"])
def test_summary_totals_equal_the_reference(name, capsys):
    code, out, _ = run_cli(["summary", name], capsys)
    total = next(line for line in out.splitlines() if line.startswith("total"))
    ref = models.model_info(name)["reference"]
    assert code == 0 and f"{ref['params_exact']:,}" in total and f"{ref['macs']:,}" in total


def test_summary_lists_every_model(capsys):
    code, out, _ = run_cli(["summary", "--list"], capsys)
    listed = [line.split()[0] for line in out.strip().splitlines()]
    assert code == 0 and listed == models.list_models() and len(listed) == 42  # googlenet_tv and the five CIFAR DenseNets included


def test_bench_ends_with_one_json_line(capsys):
    code, out, _ = run_cli(["bench", "lenet5", "--batch-size", "8", "--steps", "2", "--warmup", "1",
                            "--num-devices", "1", "--num-classes", "10"], capsys)
    r = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert set(r) >= {"model", "batch_size", "dtype", "device", "train_img_per_s", "infer_img_per_s",
                      "compile_s", "mfu"}
    assert r["model"] == "lenet5" and r["batch_size"] == 8 and r["train_img_per_s"] > 0 and 0 < r["mfu"] < 1
    assert r["train_img_per_s_fastest"] >= r["train_img_per_s"]  # the fastest of the steps the median is of


def test_unknown_command_and_model(capsys):
    code, _, err = run_cli(["trian"], capsys)
    assert code == 2 and "did you mean 'train'" in err
    code, _, err = run_cli(["summary", "alexnett"], capsys)
    assert code == 2 and err.count("error:") == 1 and "'alexnet'" in err
