"""DenseNet and DenseNet-BC on CIFAR-10: Huang, Liu, van der Maaten & Weinberger 2017,
"Densely Connected Convolutional Networks", Sec. 4.1-4.2 and Table 2.

Published C10+ test error (standard augmentation), as top-1 accuracy, and C10 error
(no augmentation, dropout 0.2), Table 2:
    L=40,k=12         densenet40_k12       5.24% error = 94.76% top-1;  C10 7.00%
    L=100,k=12        densenet100_k12      4.10% error = 95.9% top-1;   C10 5.77%
    bc,L=100,k=12     densenet_bc100_k12   4.51% error = 95.49% top-1;  C10 5.92%
    bc,L=250,k=24     densenet_bc250_k24   3.62% error = 96.38% top-1;  C10 5.19%
    bc,L=190,k=40     densenet_bc190_k40   3.46% error = 96.54% top-1;  C10 -

Paper recipe (Sec. 4.2): SGD with Nesterov momentum 0.9 without dampening, batch 64,
300 epochs, lr 0.1 divided by 10 at 50% and 75% of the epochs (150, 225), weight decay
1e-4 on every parameter (fb.resnet.torch's optim.sgd, which the authors' code trains
with), He init. Augmentation (Sec. 4.1, "C10+"): 4-pixel zero padding, random 32x32
crop, horizontal flip; per-channel mean/std normalisation: recipe `cifar`, the ResNet
CIFAR configs' one. All 50k training images; evaluated on the 10k test set, as Table 2.
No dropout with augmentation; the C10 runs' dropout 0.2 (after every conv but the
first) is `--config.model_kwargs.drop_rate=0.2`.

Arguments: L=N,k=N (default L=40,k=12), bc (DenseNet-BC; default L=100,k=12), one of the
five Table 2 networks above; cpu (4 steps on `digits` at 32x32, batch 16, lr scaled
linearly); `fashion` or `mnist`: the same recipe on Fashion-MNIST or MNIST, read offline
from their IDX files (`data.idx_dir`, or Debian's dataset-fashion-mnist for `fashion`), one
channel normalised with the dataset's own mean/std, at the images' own 28x28 (4-pixel
padding, random 28x28 crop, flip; the three transitions halve 28 to 14, 7 and 3 before the
global pool); `epochs=N`: N epochs instead of 300, the rate still divided at 50% and 75%.
`cpu` wins over them.
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg, positive_number
from cnn_jax.errors import UserError

# (bc, L, k) -> model name, the networks of Table 2
NETWORKS = {
    (False, 40, 12): "densenet40_k12",
    (False, 100, 12): "densenet100_k12",
    (True, 100, 12): "densenet_bc100_k12",
    (True, 250, 24): "densenet_bc250_k24",
    (True, 190, 40): "densenet_bc190_k40",
}
_PROTOCOL = "CIFAR-10 test set, C10+ (standard augmentation), Table 2 (100 - error)"
PAPER = {
    name: {"top1": top1, "top5": None, "protocol": _PROTOCOL}
    for name, top1 in [
        ("densenet40_k12", 94.76),
        ("densenet100_k12", 95.9),
        ("densenet_bc100_k12", 95.49),
        ("densenet_bc250_k24", 96.38),
        ("densenet_bc190_k40", 96.54),
    ]
}
FILE = "configs/densenet_cifar.py"
IDX_DATASETS = {"mnist": "mnist", "fashion": "fashion_mnist"}


def _choices() -> str:
    return ", ".join(f"{'bc,' if bc else ''}L={L},k={k}" for bc, L, k in NETWORKS)


def _number(a: dict, key: str, default: int) -> int:
    value = a.get(key, default)
    if value is True or not str(value).isdigit():
        raise UserError(f"{FILE}: {key}={value} is not a whole number; it takes one of {_choices()}.")
    return int(value)


def model_name(a: dict) -> str:
    bc = bool(a.get("bc"))
    L, k = _number(a, "L", 100 if bc else 40), _number(a, "k", 12)
    per_layer = 6 if bc else 3  # a BC layer has two convs
    if L < per_layer + 4 or (L - 4) % per_layer:
        raise UserError(
            f"{FILE}: L={L} is not of the form {per_layer}n+4 that "
            f"{'DenseNet-BC' if bc else 'DenseNet'} needs; it takes one of {_choices()}."
        )
    if (bc, L, k) not in NETWORKS:
        raise UserError(
            f"{FILE}: {'bc,' if bc else ''}L={L},k={k} is not a network of the paper's "
            f"Table 2; it takes one of {_choices()}."
        )
    return NETWORKS[bc, L, k]


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"L", "k", "bc", "cpu", "epochs", *IDX_DATASETS}, FILE, takes_value={"L", "k", "epochs"})
    chosen = [word for word in IDX_DATASETS if a.get(word)]
    if len(chosen) > 1:
        raise UserError(f"{FILE} takes one of mnist and fashion; pass only one.")
    c = base_config()
    c.model = model_name(a)
    c.model_kwargs.drop_rate = 0.0  # C10+: no dropout
    c.dataset = "cifar10"
    c.eval_split = "test"
    c.data.recipe = "cifar"
    c.data.image_size = 32
    c.data.channels = 3
    c.batch_size = 64
    c.num_epochs = 300.0
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = True
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "step"
    c.schedule.boundaries_epochs = (150.0, 225.0)  # 50% and 75% of 300
    c.log_every_steps = 100
    if chosen:
        c.dataset = IDX_DATASETS[chosen[0]]
        c.data.image_size = 28
        c.data.channels = 1
    if a.get("epochs"):
        c.num_epochs = positive_number(a, "epochs", 300, FILE)
        c.schedule.boundaries_epochs = (c.num_epochs / 2, c.num_epochs * 3 / 4)
    if a.get("cpu"):
        cpu_variant(c, 32)
    return c
