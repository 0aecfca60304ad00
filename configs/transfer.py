"""Transfer learning: fine-tune a trained run (or published weights) on a new dataset.

Arguments: from=WORKDIR_OR_WEIGHTS (required), data=TFDS_NAME_OR_IMAGE_FOLDER (default
digits), model=NAME (default lenet5, whose softmax head is used because the RBF head has
no parameters to replace), mode=finetune|features, size=N, channels=N, cpu.

* finetune: every parameter trains; the loaded ones (the backbone) at 0.1x the head's
  learning rate (optax.multi_transform), the usual choice since Yosinski et al. 2014.
* features: feature extraction; the backbone is frozen bit for bit and only the new
  head trains (BatchNorm running statistics, if any, still follow the new data).

The head is whatever does not load: the parameters whose shapes differ (the classifier,
when the class count changes) and any the source lacks. The log lists them.
"""

from cnn_jax import models
from cnn_jax.config import base_config, check_arg, choice, parse_arg, positive_number
from cnn_jax.errors import UserError, did_you_mean

FILE = "configs/transfer.py"


def _model(a: dict) -> str:
    name = a.get("model", "lenet5")
    if name not in models.list_models():
        raise UserError(
            f"{FILE}: model={name} is not a model name{did_you_mean(str(name), models.list_models())}; "
            "`cnn-jax summary --list` shows them."
        )
    return name


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(
        a,
        {"from", "data", "model", "mode", "size", "channels", "cpu"},
        FILE,
        takes_value={"from", "data", "model", "mode", "size", "channels"},
    )
    c = base_config()
    c.model = _model(a)
    if c.model == "lenet5":
        c.model_kwargs.head = "softmax"
    c.dataset = a.get("data", "digits")
    c.data.recipe = "digits" if c.model == "lenet5" else "torchvision"
    c.data.image_size = int(positive_number(a, "size", 32 if c.model == "lenet5" else 224, FILE))
    c.data.channels = choice(a, "channels", (1, 3), 1 if c.model == "lenet5" else 3, FILE)
    c.transfer.init_from = a.get("from", "")  # required: without it the config check refuses the run
    mode = choice(a, "mode", ("finetune", "features"), "finetune", FILE)
    c.transfer.freeze = "backbone" if mode == "features" else ""
    c.transfer.backbone_lr_scale = 1.0 if mode == "features" else 0.1
    c.batch_size = 32
    c.num_epochs = 10.0
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.01
    c.optimizer.momentum = 0.9
    c.schedule.name = "cosine"
    c.log_every_steps = 10
    return c
