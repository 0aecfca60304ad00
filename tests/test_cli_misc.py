"""summary, bench and the command dispatcher."""

import json
import statistics

import pytest
from conftest import run_cli

from cnn_jax import models


@pytest.mark.parametrize("name", ["lenet5", "resnet50", "googlenet", "vgg11_lrn"])
def test_summary_totals_equal_the_reference(name, capsys):
    code, out, _ = run_cli(["summary", name], capsys)
    total = next(line for line in out.splitlines() if line.startswith("total"))
    ref = models.model_info(name)["reference"]
    assert code == 0 and f"{ref['params_exact']:,}" in total and f"{ref['macs']:,}" in total


def test_summary_lists_every_model(capsys):
    code, out, _ = run_cli(["summary", "--list"], capsys)
    listed = [line.split()[0] for line in out.strip().splitlines()]
    assert (
        code == 0 and listed == models.list_models() and len(listed) == 42
    )  # googlenet_tv and the five CIFAR DenseNets included


def _recording_step_times(monkeypatch) -> list:
    """Every list of step times bench measures, in order: training (wall clock), training (CPU
    time), inference."""
    from cnn_jax.train import bench

    measured, original = [], bench._step_times

    def recording(*args, **kwargs):
        measured.append(original(*args, **kwargs))
        return measured[-1]

    monkeypatch.setattr(bench, "_step_times", recording)
    return measured


def test_bench_ends_with_one_json_line(capsys, monkeypatch):
    from cnn_jax.train import bench

    measured = _recording_step_times(monkeypatch)
    monkeypatch.setattr(bench, "matmul_peak_flops", lambda dtype: 5e11)  # a stated peak: 500 GFLOP/s
    code, out, _ = run_cli(
        [
            "bench",
            "lenet5",
            "--batch-size",
            "8",
            "--steps",
            "3",
            "--warmup",
            "1",
            "--num-devices",
            "1",
            "--num-classes",
            "10",
        ],
        capsys,
    )
    r = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert set(r) >= {
        "model",
        "batch_size",
        "dtype",
        "device",
        "train_img_per_s",
        "infer_img_per_s",
        "compile_s",
        "mfu",
    }
    assert (r["model"], r["batch_size"], r["devices"]) == ("lenet5", 8, 1) and r["compile_s"] > 0
    # Each figure is the batch over the step time it names: the median and the fastest training
    # step, the median CPU time of a training step, the median inference step.
    train, train_cpu, infer = measured
    assert len(train) == len(train_cpu) == len(infer) == 3
    assert r["train_img_per_s"] == pytest.approx(8 / statistics.median(train), rel=1e-9)
    assert r["train_img_per_s_fastest"] == pytest.approx(8 / min(train), rel=1e-9)
    assert r["train_img_per_cpu_s"] == pytest.approx(8 / statistics.median(train_cpu), rel=1e-9)
    assert r["infer_img_per_s"] == pytest.approx(8 / statistics.median(infer), rel=1e-9)
    # MFU: the step's FLOPs at the median step rate over the peak. A LeNet-5 training step is
    # about 3 forward passes of 2 x 326,520 FLOPs per image (the multiply-adds of its reference
    # table), plus the optimizer and the loss.
    assert r["peak_gflop_per_s"] == 500
    assert r["mfu"] == pytest.approx(r["step_gflop"] * r["train_img_per_s"] / 8 / r["peak_gflop_per_s"], rel=1e-9)
    forward_gflop = 8 * 2 * models.model_info("lenet5")["reference"]["macs"] / 1e9
    assert 2 * forward_gflop < r["step_gflop"] < 6 * forward_gflop, (r["step_gflop"], forward_gflop)
    assert 0 < r["mfu"] < 1


def test_unknown_command_and_model(capsys):
    code, _, err = run_cli(["trian"], capsys)
    assert code == 2 and "did you mean 'train'" in err
    code, _, err = run_cli(["summary", "alexnett"], capsys)
    assert code == 2 and err.count("error:") == 1 and "'alexnet'" in err
