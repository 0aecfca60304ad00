"""The training engine in this process (8 emulated CPU devices): device-count invariance,
outputs, and each error a user can cause."""

import json
import pathlib
import shutil

import numpy as np
import pytest
from conftest import run_cli
from helpers import final_params, final_state, initial_state, max_abs_diff, max_state_diffs, metrics, train_losses

LENET = ["--config", "configs/lenet5.py", "--config.log_every_steps=5"]


def _one_vs_eight(tmp_path, capsys, args, steps):
    common = [
        "train",
        *args,
        f"--config.num_train_steps={steps}",
        "--config.log_every_steps=1",
        f"--config.checkpoint_every_steps={steps}",
        f"--config.eval_every_steps={steps}",
    ]
    assert run_cli(common + ["--workdir", tmp_path / "one", "--num-devices", "1"], capsys)[0] == 0
    assert run_cli(common + ["--workdir", tmp_path / "eight"], capsys)[0] == 0
    one, eight = train_losses(tmp_path / "one"), train_losses(tmp_path / "eight")
    assert sorted(one) == sorted(eight) == list(range(1, steps + 1))
    r1, r8 = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "eight"))
    assert (r1["devices"], r8["devices"]) == (1, 8) and r1["eval_examples"] == r8["eval_examples"] == 300
    return (
        [one[s] for s in sorted(one)],
        [eight[s] for s in sorted(one)],
        final_params(tmp_path / "one"),
        final_params(tmp_path / "eight"),
    )


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
    args = [
        "--config",
        f"{root}/configs/resnet_cifar.py:depth=20,cpu",
        "--config.batch_size=32",
        "--config.optimizer.lr=0.01",
    ]
    l1, l8, p1, p8 = _one_vs_eight(tmp_path, capsys, args, 3)
    np.testing.assert_allclose(l1, l8, rtol=3e-5)
    assert max_abs_diff(p1, p8) < 3e-4


def _relative_difference(before, a, b) -> float:
    """How far two trees moved apart relative to how far the first moved from `before`:
    |a - b| / |a - before|, each the L2 norm over every leaf."""
    import jax

    def norm(x, y) -> float:
        pairs = zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)
        return sum(float(np.sum((np.float64(u) - v) ** 2)) for u, v in pairs) ** 0.5

    return norm(a, b) / norm(a, before)


def test_every_part_of_the_state_takes_one_step_alike_on_1_and_8_devices(tmp_path, data_dir, root, capsys):
    # tests/configs/every_part.py (BatchNorm, dropout, random crops and flips, weight average,
    # warm-up, RMSProp): one step on 1 and on 8 devices (4 examples each). The forward pass
    # agrees to float32 rounding, so the loss and BatchNorm statistics are held to 3e-6. The
    # step may not, on some CPUs and seeds: an activation within rounding of ReLU6's kink passes
    # its gradient on one device count and not on the other, and on the last 1x1 maps (32
    # values per channel) that one example moves its channel's gradient, and every layer's
    # below, by percents, as another convolution on one device does. So the states are held
    # to how far the step moved them: a wrong reduction moves them apart by about the step
    # itself, rounding by a few percent (experiments/benchmarks/LOG.md, "one step on 1 and 8
    # devices"). Statistics or dropout masks per device change the loss by percents. Longer
    # runs are compared where the rounding is the same (tests/test_resume_multiprocess.py).
    common = [
        "train",
        "--config",
        root / "tests" / "configs" / "every_part.py",
        "--config.num_train_steps=1",
        "--config.checkpoint_every_steps=1",
        "--config.eval_every_steps=1",
    ]
    runs = {}
    for n in (1, 8):
        assert run_cli(common + ["--workdir", tmp_path / str(n), "--num-devices", n], capsys)[0] == 0
        runs[n] = final_state(tmp_path / str(n)), train_losses(tmp_path / str(n))[1]
    before = initial_state(tmp_path / "1")
    state, loss = runs[1]
    assert state["ema"] and max_abs_diff(state["params"], before["params"]) > 1e-4  # it moved
    other, other_loss = runs[8]
    assert abs(other_loss - loss) <= 3e-6 * loss, (other_loss, loss)
    assert max_state_diffs(state, other)["batch_stats"] <= 3e-6
    moved_apart = {
        part: _relative_difference(before[part], state[part], other[part]) for part in ("params", "opt_state")
    }
    moved_apart["ema"] = _relative_difference(before["ema"]["params"], state["ema"]["params"], other["ema"]["params"])
    assert max(moved_apart["params"], moved_apart["ema"]) <= 0.1 and moved_apart["opt_state"] <= 0.25, moved_apart


def test_workdir_outputs(tmp_path, data_dir, root, capsys):
    wd = tmp_path / "run"
    code, out, _ = run_cli(
        [
            "train",
            *LENET,
            "--config.num_train_steps=20",
            "--config.checkpoint_every_steps=10",
            "--config.eval_every_steps=10",
            "--workdir",
            wd,
        ],
        capsys,
    )
    assert code == 0 and "top-1" in out
    res = json.loads((wd / "results.json").read_text())
    for key in (
        "model",
        "dataset",
        "params",
        "macs",
        "top1",
        "top5",
        "steps",
        "epochs",
        "wall_time_s",
        "images_per_s",
        "devices",
        "eval_protocol",
        "status",
    ):
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
    assert (
        run_cli(
            [
                "train",
                *LENET,
                "--config.num_train_steps=20",
                "--config.checkpoint_every_steps=10",
                "--config.eval_every_steps=10",
                "--workdir",
                wd,
            ],
            capsys,
        )[0]
        == 0
    )
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
    msg = _error(
        capsys,
        [
            "train",
            *LENET,
            "--config.dataset=imagenet2012",
            f"--config.data_dir={tmp_path}",
            "--workdir",
            tmp_path / "w",
        ],
    )
    assert "ILSVRC2012_img_train.tar" in msg and str(tmp_path) in msg


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint_and_result(tmp_path, data_dir, capsys):
    wd = tmp_path / "nan"
    # The softmax head is unbounded (the RBF head's tanh inputs are not), so an absurd learning
    # rate overflows the logits within a few steps.
    lenet = ["--config", "configs/lenet5.py:head=softmax", "--config.log_every_steps=5"]
    assert (
        run_cli(
            ["train", *lenet, "--config.num_train_steps=10", "--config.checkpoint_every_steps=10", "--workdir", wd],
            capsys,
        )[0]
        == 0
    )
    good = final_params(wd)
    completed, checkpoint_files = (wd / "results.json").read_bytes(), _files(wd / "checkpoints")
    assert json.loads(completed)["status"] == "completed"
    code, _, err = run_cli(
        [
            "train",
            *lenet,
            "--config.num_train_steps=40",
            "--config.checkpoint_every_steps=10",
            "--config.optimizer.lr=1e38",
            "--allow-config-change",
            "--workdir",
            wd,
        ],
        capsys,
    )
    assert code == 3 and "NaN or infinite at step" in err and "step 10" in err
    steps = sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [10] and max_abs_diff(final_params(wd), good) == 0.0
    # The failed run left the completed result and the checkpoint's files as they were.
    assert (wd / "results.json").read_bytes() == completed and _files(wd / "checkpoints") == checkpoint_files


def _files(directory: pathlib.Path) -> dict:
    return {str(f.relative_to(directory)): f.read_bytes() for f in sorted(directory.rglob("*")) if f.is_file()}


def test_workdir_of_a_different_config_is_refused(tmp_path, data_dir, capsys):
    wd = tmp_path / "w"
    assert run_cli(["train", *LENET, "--config.num_train_steps=5", "--workdir", wd], capsys)[0] == 0
    msg = _error(capsys, ["train", *LENET, "--config.num_train_steps=5", "--config.seed=1", "--workdir", wd])
    assert "different config" in msg and "seed" in msg and "--allow-config-change" in msg


def _damage(step_dir: pathlib.Path) -> None:
    """Overwrite a checkpoint step's array files with garbage and drop its data folder."""
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "zarr" not in f.name:
            f.write_bytes(b"\0garbage")
    shutil.rmtree(step_dir / "state" / "d", ignore_errors=True)


def _saved_arrays(step_dir: pathlib.Path) -> dict:
    """A step's arrays as Orbax reads them without a template (independently of Checkpoints)."""
    import jax
    import orbax.checkpoint as ocp

    return jax.tree.map(np.asarray, ocp.StandardCheckpointer().restore(step_dir / "state"))


def _recording_restores(monkeypatch) -> list:
    """(step, arrays as saved) of every Checkpoints.restore that found a step, in order (copied:
    the train step donates the state's arrays)."""
    from cnn_jax.train.checkpoint import Checkpoints

    restores, original = [], Checkpoints.restore

    def recording(self, template, step=None):
        found = original(self, template, step)
        if found is not None:
            restores.append((found[0], _as_saved(found[1])))
        return found

    monkeypatch.setattr(Checkpoints, "restore", recording)
    return restores


def _as_saved(state) -> dict:
    import jax

    parts = {
        "step": state.step,
        "params": state.params,
        "batch_stats": state.batch_stats,
        "opt_state": state.opt_state,
        "rng": state.rng,
        "control": state.control,
        "ema": state.ema,
    }
    return jax.tree.map(np.asarray, jax.device_get(parts))


def _same_arrays(a: dict, b: dict) -> bool:
    import jax

    if sorted(a) != sorted(b):
        return False
    pairs = [(jax.tree.leaves(a[k]), jax.tree.leaves(b[k])) for k in sorted(a)]
    return all(len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y, strict=True)) for x, y in pairs)


def test_corrupt_latest_checkpoint_is_moved_aside_and_the_previous_restored(tmp_path, data_dir, capsys, monkeypatch):
    wd = tmp_path / "w"
    args = [
        "train",
        *LENET,
        "--config.ema_decay=0.9",
        "--config.checkpoint_every_steps=5",
        "--config.keep_checkpoints=3",
        "--workdir",
        wd,
    ]
    assert run_cli(args + ["--config.num_train_steps=10"], capsys)[0] == 0
    step5 = _saved_arrays(wd / "checkpoints" / "5")
    _damage(wd / "checkpoints" / "10")
    # Extending the run reads the newest checkpoint: it is damaged, so it resumes from step 5.
    restores = _recording_restores(monkeypatch)
    code, _, err = run_cli(args + ["--config.num_train_steps=15", "--allow-config-change"], capsys)
    assert code == 0, err[-2000:]
    assert "Checkpoint step 10" in err and "unreadable" in err and "resuming" in err and "from step 5" in err
    step, restored = restores[0]
    assert step == 5 and _same_arrays(restored, step5) and step5["ema"]
    # The damaged step is kept aside as it was, and the run wrote a good step 10 in its place.
    aside = wd / "checkpoints_unreadable" / "10" / "state"
    assert aside.is_dir() and not (aside / "d").exists()
    assert {f.read_bytes() for f in aside.rglob("*") if f.is_file() and f.stat().st_size > 0} <= {b"\0garbage"}
    assert sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit()) == [5, 10, 15]
    assert _saved_arrays(wd / "checkpoints" / "10")["step"] == 10
    result = json.loads((wd / "results.json").read_text())
    assert (result["steps"], result["status"]) == (15, "completed")


def test_every_checkpoint_unreadable_is_one_sentence_and_moves_nothing(tmp_path, data_dir, capsys):
    wd = tmp_path / "w"
    args = ["train", *LENET, "--config.checkpoint_every_steps=5", "--workdir", wd]
    assert run_cli(args + ["--config.num_train_steps=10"], capsys)[0] == 0
    for step in (5, 10):
        _damage(wd / "checkpoints" / str(step))
    extend = args + ["--config.num_train_steps=15", "--allow-config-change"]
    for attempt in (1, 2):  # the same command again still refuses: the damaged run does not restart from step 0
        code, _, err = run_cli(extend, capsys)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1, (attempt, err[-2000:])
        assert "Every checkpoint in" in errors[0] and "unreadable" in errors[0] and "backup" in errors[0]
        assert errors[0].endswith(".") and errors[0].count(". ") == 0
    assert sorted(p.name for p in (wd / "checkpoints").iterdir() if p.name.isdigit()) == ["10", "5"]
    assert not (wd / "checkpoints_unreadable").exists()


def test_a_resumed_run_reports_the_wall_time_of_every_segment(tmp_path, data_dir, capsys, monkeypatch):
    # A clock that advances one second per reading, shared by both runs: the resumed run's wall
    # time must add the first run's up to its checkpoint (which records it) to its own.
    from types import SimpleNamespace

    from cnn_jax.train import loop

    ticks = iter(range(1, 10**6))
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    wd = tmp_path / "run"
    args = ["train", *LENET, "--config.log_every_steps=1", "--config.eval_every_steps=8", "--workdir", wd]
    assert run_cli([*args, "--config.num_train_steps=8"], capsys)[0] == 0
    first = json.loads((wd / "results.json").read_text())["wall_time_s"]  # 8 steps: about 20 readings
    start = next(ticks)
    assert run_cli([*args, "--config.num_train_steps=10", "--allow-config-change"], capsys)[0] == 0
    own = next(ticks) - start  # more than the resumed run's own readings span
    resumed = json.loads((wd / "results.json").read_text())
    assert resumed["steps"] == 10 and "from step 8" in (wd / "train.log").read_text()
    assert own < resumed["wall_time_s"] < own + first, (own, first, resumed["wall_time_s"])
