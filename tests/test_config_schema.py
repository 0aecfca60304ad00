"""Every input checked before work starts: each config key has a schema entry, every paper
config passes the check, the mistakes a new user makes are one sentence and exit status 2
(all of them at once), files are named by line, and the key listing and its Markdown are
generated from the schema."""

import importlib.util
import json

import pytest
from conftest import ROOT, run_cli

from cnn_jax.config import base_config
from cnn_jax.config_rules import RULES, config_problems
from cnn_jax.config_schema import SCHEMA, leaf_names, value_at
from cnn_jax.config_table import as_markdown
from cnn_jax.errors import UserError

LENET = ["--config", "configs/lenet5.py"]


def one_error_line(capsys, args) -> str:
    """Run `cnn-jax ARGS`: exit status 2 and one line on stderr, the error's sentence(s)."""
    code, _, err = run_cli(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- the schema covers the config -----------------------------------------------------------
def test_every_key_of_base_config_has_a_schema_entry():
    keys = leaf_names(base_config())
    missing = [k for k in keys if k not in SCHEMA]
    assert not missing, f"config keys without a schema entry in cnn_jax/config_schema.py: {missing}"
    stale = sorted(set(SCHEMA) - set(keys))
    assert not stale, f"schema entries for keys base_config() no longer has: {stale}"


def test_the_defaults_pass_their_own_entries_and_each_entry_says_what_it_is():
    base = base_config()
    for name in leaf_names(base):
        assert SCHEMA[name].problem(name, value_at(base, name)) is None, name
        assert SCHEMA[name].text and "\n" not in SCHEMA[name].text and SCHEMA[name].expectation()


@pytest.mark.parametrize(
    "name,value",
    [
        ("batch_size", 0),
        ("batch_size", True),
        ("optimizer.lr", float("nan")),
        ("optimizer.lr", -0.1),
        ("dtype", "float16"),
        ("data.channels", 2),
        ("schedule.boundaries_epochs", (10, -1)),
        ("data.randaugment", "2,11"),
        ("dataset", ""),
        ("seed", 2**40),
        ("data.num_parallel_calls", 0),
    ],
)
def test_an_entry_refuses_with_one_sentence_naming_the_key_and_the_flag(name, value):
    problem = SCHEMA[name].problem(name, value)
    assert problem and problem.startswith(name) and f"--config.{name}" in problem and problem.endswith(".")


def test_rules_read_only_known_keys_and_choices_match_their_modules():
    for keys, _ in RULES:
        assert set(keys) <= set(SCHEMA), keys
    from cnn_jax.train.selection import REPORT_CHECKPOINTS  # spelled out in the schema, which loads without it

    assert SCHEMA["report_checkpoint"].choices == REPORT_CHECKPOINTS


# --- every config file and argument passes -----------------------------------------------------
slow = pytest.mark.slow
# Tracing the largest networks' initialisation takes several seconds each on 2 cores.
HEAVY = {"densenet", "densenet_cifar", "inception_v3", "inception_resnet_v2"}
CONFIG_ARGS = {
    "lenet5": ["", "head=softmax", "mnist", "fashion"],
    "resnet_cifar": ["depth=20", "depth=56", "depth=110", "depth=20,val", "depth=20,fashion", "depth=20,epochs=40"],
    "mobilenet_v1": ["", "alpha=0.25", "alpha=0.5", "fashion,epochs=5"],
    "alexnet": ["", "owt"],
    "zfnet": [""],
    "xception": [""],
    "googlenet": [""],
    "vgg": ["A", "A-LRN", "C", "D", "E,bn"],
    "resnet": ["depth=18", "depth=50", "depth=50,v1_5", "depth=152"],
    "inception_v3": [""],
    "inception_resnet_v2": [""],
    "densenet": ["depth=121", "depth=161"],
    "densenet_cifar": ["", "bc,L=250,k=24", "bc,fashion,epochs=40"],
    "random_erasing": ["", "depth=56,base", "epochs=60"],
}
CASES = [
    pytest.param(name, variant, id=f"{name}:{variant}", marks=[slow] if name in HEAVY else [])
    for name, args in CONFIG_ARGS.items()
    for arg in args
    for variant in (arg, f"{arg},cpu" if arg else "cpu")
]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_schema_config_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,arg", CASES)
def test_every_paper_config_passes_the_check(name, arg):
    assert config_problems(load(name).get_config(arg or None)) == []


# Each config file's argument values are its paper's; anything else is one sentence naming them.
BAD_ARGS = [
    ("resnet_cifar", "depth=21", "20, 32, 44, 56, 110"),
    ("resnet", "depth=19", "18, 34, 50, 101, 152"),
    ("densenet", "depth=100", "121, 169, 201, 161"),
    ("mobilenet_v1", "alpha=3", "0.25, 0.5, 0.75, 1.0"),
    ("mobilenet_v1", "fashion,epochs=x", "positive number"),
    ("lenet5", "head=svm", "rbf, softmax"),
    ("lenet5", "cpu=0", "takes no value"),
    ("resnet", "depth", "needs a value"),
    ("transfer", "from=x,mode=tune", "finetune, features"),
    ("transfer", "from=x,channels=2", "1, 3"),
    ("transfer", "from=x,model=lenet", "lenet5"),
    ("vgg", "D=1", "takes no value"),
    ("alexnet", "owt=yes", "takes no value"),
    ("resnet_cifar", "depth=20,epochs=-3", "positive"),
]


@pytest.mark.parametrize("name,arg,named", BAD_ARGS, ids=[f"{n}:{a}" for n, a, _ in BAD_ARGS])
def test_a_config_argument_outside_the_papers_values_is_one_sentence(name, arg, named):
    with pytest.raises(UserError) as e:
        load(name).get_config(arg)
    message = str(e.value)
    assert named in message and f"configs/{name}.py" in message and message.endswith(".") and "\n" not in message


# --- the commands a new user tried ------------------------------------------------------------
def test_a_negative_or_zero_batch_is_refused_before_anything_is_read(tmp_path, capsys):
    for size in (-1, 0):
        line = one_error_line(capsys, ["train", *LENET, f"--config.batch_size={size}", "--workdir", tmp_path / "w"])
        assert "batch_size must be a whole number" in line and f"not {size}" in line
    assert not (tmp_path / "w").exists()


def test_a_workdir_that_is_a_file_lies_under_a_file_or_holds_another_run(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file" in one_error_line(capsys, ["train", *LENET, "--workdir", afile])
    assert "which is a file" in one_error_line(capsys, ["train", *LENET, "--workdir", afile / "run"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model": "resnet20", "seed": 3}))
    line = one_error_line(capsys, ["train", *LENET, "--workdir", other])
    assert "holds a run of a different config" in line and "--allow-config-change" in line
    (other / "config.json").write_text("{not json")
    assert "config.json is unreadable" in one_error_line(capsys, ["train", *LENET, "--workdir", other])


def test_a_sweep_or_suite_file_with_a_syntax_error_names_the_file_and_line(tmp_path, capsys):
    sweep = tmp_path / "x.py"
    sweep.write_text('BASE = "configs/lenet5.py"\nSPACE = {"optimizer.lr": [0.1,\n')
    line = one_error_line(capsys, ["sweep", sweep, "--workdir", tmp_path / "s"])
    assert f"{sweep} line 2:" in line and line.endswith("; fix the file.")
    suite = tmp_path / "suite.py"
    suite.write_text("import no_such_module\nENTRIES = []\n")
    line = one_error_line(capsys, ["reproduce", suite, "--workdir", tmp_path / "r"])
    assert f"{suite} line 1: ModuleNotFoundError" in line


def test_a_depth_the_paper_has_not_is_refused_before_the_dataset_is_fetched(tmp_path, capsys):
    args = ["train", "--config", "configs/resnet_cifar.py:depth=21", "--workdir", tmp_path / "w"]
    line = one_error_line(capsys, args)
    assert "configs/resnet_cifar.py: depth=21 is not one of 20, 32, 44, 56, 110" in line
    assert not (tmp_path / "w").exists()


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    line = one_error_line(
        capsys,
        [
            "train",
            *LENET,
            "--config.batch_size=-1",
            "--config.optimizer.lr=nan",
            "--config.model=resnet5O",
            "--config.schedule.boundaries_epochs=(15, 10)",
            "--config.data.randaugment=9",
            "--workdir",
            tmp_path,
        ],
    )
    for part in (
        "batch_size must be",
        "optimizer.lr must be",
        "Unknown model 'resnet5O'",
        "must ascend",
        "data.randaugment must be",
    ):
        assert part in line, part


def test_cross_key_rules_name_the_fix(tmp_path, capsys):
    cases = {
        ("--config.data.mixup_alpha=0.2", "--config.batch_size=33"): "must be even",
        ("--config.num_epochs=-1", "--config.num_train_steps=-1"): "Neither num_epochs nor num_train_steps",
        ("--config.num_epochs=12",): "reach past the run's 12 epochs",
        ("--config.schedule.name=plateau",): "--config.data.minival_size=N",
        ("--config.data.image_size=8",): "lenet5 cannot take 8x8 inputs",
        ("--config.transfer.freeze=backbone",): "transfer.init_from is empty",
        (f"--config.dataset={tmp_path}",): "has no train/ subfolder",
    }
    for overrides, part in cases.items():
        assert part in one_error_line(capsys, ["config", *LENET, *overrides]), overrides


def test_a_config_file_mistake_is_named_by_file_and_line(tmp_path, capsys):
    config = tmp_path / "c.py"
    config.write_text(
        "from cnn_jax.config import base_config\n\ndef get_config(arg=None):\n    return base_config().nope\n"
    )
    assert f"{config} line 4: AttributeError" in one_error_line(capsys, ["config", "--config", config])
    config.write_text("def get_config(arg=None)\n    pass\n")
    assert f"{config} line 1: expected ':'; fix the file." in one_error_line(capsys, ["config", "--config", config])


def test_argument_mistakes_of_any_command_are_one_sentence(capsys):
    for args in (
        ["bench", "lenet5", "--batch-size", "x"],
        ["bench", "lenet5", "--steps", "0"],
        ["summary", "alexnet_owt", "--input-size", "32"],
        ["reproduce", "experiments/digits.py"],
        ["table", "--nope"],
        ["eval", "--protocol", "9crop"],
    ):
        one_error_line(capsys, args)


def test_bench_lenet5_prints_its_json_line(capsys):
    code, out, err = run_cli(["bench", "lenet5"], capsys)
    assert code == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    assert r["model"] == "lenet5" and r["batch_size"] == 16 and r["train_img_per_s"] > 0


# --- the listing and the docs ---------------------------------------------------------------
def test_config_and_train_help_list_every_key_with_its_type_and_default(capsys):
    keys = leaf_names(base_config())
    for args in (["config"], ["train", "--help"]):
        code, out, _ = run_cli(args, capsys)
        assert code == 0
        listed = [
            line.split()[0] for line in out.splitlines() if line.startswith("  ") and " (" in line and "default" in line
        ]
        assert set(keys) <= set(listed), set(keys) - set(listed)
    assert "  batch_size (int, default 128): global batch" in out


def test_the_config_check_prints_the_config_it_accepts(capsys):
    code, out, _ = run_cli(["config", *LENET, "--config.batch_size=64"], capsys)
    assert code == 0 and '"batch_size": 64' in out and "no problem found" in out


def test_docs_configuration_md_is_the_generated_table():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == as_markdown(), "regenerate it: cnn-jax config --markdown > docs/configuration.md"
    assert all(f"| `{key}` |" in doc for key in leaf_names(base_config()))
