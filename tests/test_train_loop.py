"""The training engine in this process (8 emulated CPU devices): device-count invariance,
outputs, and each error a user can cause."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from conftest import run_cli
from helpers import final_params, max_abs_diff, metrics, train_losses

LENET = ["--config", "configs/lenet5.py", "--config.log_every_steps=5"]


def _one_vs_eight(tmp_path, capsys, args, steps):
    common = ["train", *args, f"--config.num_train_steps={steps}", "--config.log_every_steps=1",
              f"--config.checkpoint_every_steps={steps}", f"--config.eval_every_steps={steps}"]
    assert run_cli(common + ["--workdir", tmp_path / "one", "--num-devices", "1"], capsys)[0] == 0
    assert run_cli(common + ["--workdir", tmp_path / "eight"], capsys)[0] == 0
    one, eight = train_losses(tmp_path / "one"), train_losses(tmp_path / "eight")
    assert sorted(one) == sorted(eight) == list(range(1, steps + 1))
    r1, r8 = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "eight"))
    assert (r1["devices"], r8["devices"]) == (1, 8) and r1["eval_examples"] == r8["eval_examples"] == 300
    return ([one[s] for s in sorted(one)], [eight[s] for s in sorted(one)],
            final_params(tmp_path / "one"), final_params(tmp_path / "eight"))


def test_one_and_eight_devices_give_the_same_trajectory(tmp_path, data_dir, capsys):
    # Only the order of float32 reductions differs between 1 and 8 devices: 12 steps of
    # LeNet-5 agree to 1e-5 relative on every loss and 1e-6 absolute on every parameter.
    l1, l8, p1, p8 = _one_vs_eight(tmp_path, capsys, LENET, 12)
    np.testing.assert_allclose(l1, l8, rtol=1e-5)
    assert max_abs_diff(p1, p8) < 1e-6


def test_batchnorm_statistics_cover_the_global_batch(tmp_path, data_dir, root, capsys):
    # ResNet-20: BN over the global batch on 8 devices, as on one. Losses agree to 3e-5
    # relative for 3 steps (about 1.1e-5 at step 3: each device's oneDNN weight gradient
    # sums its own examples, then the devices' sums are added); parameters (init ~0.1,
    # updates ~1e-3) to 3e-4 absolute: BN divides by the spread of nearly constant channels
    # (the digits' empty borders), which magnifies reduction-order differences (from 4e-5 to
    # 1.2e-4 depending on the CPU's vector code). Per-device statistics would change the
    # losses by percents, which the rtol above would catch.
    args = ["--config", f"{root}/configs/resnet_cifar.py:depth=20,cpu", "--config.batch_size=32",
            "--config.optimizer.lr=0.01"]
    l1, l8, p1, p8 = _one_vs_eight(tmp_path, capsys, args, 3)
    np.testing.assert_allclose(l1, l8, rtol=3e-5)
    assert max_abs_diff(p1, p8) < 3e-4


def test_workdir_outputs(tmp_path, data_dir, root, capsys):
    wd = tmp_path / "run"
    code, out, _ = run_cli(["train", *LENET, "--config.num_train_steps=20", "--config.checkpoint_every_steps=10",
                            "--config.eval_every_steps=10", "--workdir", wd], capsys)
    assert code == 0 and "top-1" in out
    res = json.loads((wd / "results.json").read_text())
    for key in ("model", "dataset", "params", "macs", "top1", "top5", "steps", "epochs", "wall_time_s",
                "images_per_s", "devices", "eval_protocol", "status"):
        assert key in res, key
    assert res["status"] == "completed" and res["steps"] == 20 and res["params"] == 60_000
    assert 0.0 <= res["top1"] <= res["top5"] <= 1.0 and res["eval_examples"] == 300
    assert json.loads((wd / "config.json").read_text())["model"] == "lenet5"
    assert [m["step"] for m in metrics(wd) if "val/top1" in m] == [10, 20]
    assert list((wd / "tensorboard").glob("events.out.tfevents.*")) and (wd / "train.log").stat().st_size > 0
    assert sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit()) == [10, 20]
    # The table renders the same numbers as results.json.
    code, table, _ = run_cli(["table", wd, "--format", "csv"], capsys)
    header, row = table.strip().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert float(values["top1_pct"]) == pytest.approx(100 * res["top1"])
    assert int(values["params"]) == res["params"] and int(values["macs"]) == res["macs"]
    # Running the finished workdir again does nothing and keeps the result.
    assert run_cli(["train", *LENET, "--config.num_train_steps=20", "--config.checkpoint_every_steps=10",
                    "--config.eval_every_steps=10", "--workdir", wd], capsys)[0] == 0
    assert json.loads((wd / "results.json").read_text()) == res
    # eval from the checkpoint reproduces the final evaluation.
    code, out, _ = run_cli(["eval", "--workdir", wd, "--step", "latest"], capsys)
    assert code == 0
    assert json.loads((wd / "eval_center.json").read_text())["top1"] == pytest.approx(res["top1"])
    # 10-crop of digits: the crops equal the whole 32x32 image, so the protocol averages each
    # image's logits with its mirror image's; every example is still counted once.
    assert run_cli(["eval", "--workdir", wd, "--step", "latest", "--protocol", "10crop"], capsys)[0] == 0
    ten = json.loads((wd / "eval_10crop.json").read_text())
    assert ten["count"] == 300 and ten["protocol"] == "10crop" and 0.0 <= ten["top1"] <= ten["top5"] <= 1.0


def _error(capsys, args):
    code, _, err = run_cli(args, capsys)
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1, err
    return lines[0]


def test_unknown_model(tmp_path, data_dir, capsys):
    msg = _error(capsys, ["train", *LENET, "--config.model=resnet5O", "--workdir", tmp_path])
    assert "Unknown model 'resnet5O'" in msg and "resnet50" in msg


def test_mistyped_override_key_and_bad_value(tmp_path, capsys):
    assert "did you mean 'lr'" in _error(capsys, ["train", *LENET, "--config.optimizer.lrr=0.1", "--workdir", tmp_path])
    assert "could not convert" in _error(capsys, ["train", *LENET, "--config.optimizer.lr=fast", "--workdir", tmp_path])


def test_batch_not_divisible_by_device_count(tmp_path, data_dir, capsys):
    msg = _error(capsys, ["train", *LENET, "--config.batch_size=12", "--workdir", tmp_path])
    assert "batch_size 12 is not divisible by the 8 devices" in msg


def test_missing_dataset_files(tmp_path, capsys):
    msg = _error(capsys, ["train", *LENET, "--config.dataset=imagenet2012", f"--config.data_dir={tmp_path}",
                          "--workdir", tmp_path / "w"])
    assert "ILSVRC2012_img_train.tar" in msg and str(tmp_path) in msg


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_dir, capsys):
    wd = tmp_path / "nan"
    # The softmax head is unbounded (the RBF head's tanh inputs are not), so an absurd learning
    # rate overflows the logits within a few steps.
    lenet = ["--config", "configs/lenet5.py:head=softmax", "--config.log_every_steps=5"]
    assert run_cli(["train", *lenet, "--config.num_train_steps=10", "--config.checkpoint_every_steps=10",
                    "--workdir", wd], capsys)[0] == 0
    good = final_params(wd)
    code, _, err = run_cli(["train", *lenet, "--config.num_train_steps=40", "--config.checkpoint_every_steps=10",
                            "--config.optimizer.lr=1e38", "--allow-config-change", "--workdir", wd], capsys)
    assert code == 3 and "NaN or infinite at step" in err and "step 10" in err
    steps = sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [10] and max_abs_diff(final_params(wd), good) == 0.0


def test_workdir_of_a_different_config_is_refused(tmp_path, data_dir, capsys):
    wd = tmp_path / "w"
    assert run_cli(["train", *LENET, "--config.num_train_steps=5", "--workdir", wd], capsys)[0] == 0
    msg = _error(capsys, ["train", *LENET, "--config.num_train_steps=5", "--config.seed=1", "--workdir", wd])
    assert "different config" in msg and "seed" in msg and "--allow-config-change" in msg


def test_corrupt_latest_checkpoint_resumes_from_the_previous(tmp_path, data_dir, capsys, caplog):
    wd = tmp_path / "w"
    args = ["train", *LENET, "--config.checkpoint_every_steps=5", "--config.keep_checkpoints=3", "--workdir", wd]
    assert run_cli(args + ["--config.num_train_steps=10"], capsys)[0] == 0
    for f in (wd / "checkpoints" / "10" / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "zarr" not in f.name:
            f.write_bytes(b"\0garbage")
    shutil.rmtree(wd / "checkpoints" / "10" / "state" / "d", ignore_errors=True)
    pathlib.Path(wd / "results.json").unlink()
    # Extending the run reads the newest checkpoint: it is damaged, so it resumes from step 5.
    code, _, err = run_cli(args + ["--config.num_train_steps=15", "--allow-config-change"], capsys)
    assert code == 0
    assert "Checkpoint step 10" in err and "unreadable" in err and "resuming" in err and "from step 5" in err
    assert json.loads((wd / "results.json").read_text())["steps"] == 15
