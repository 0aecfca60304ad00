"""ResNet-20/32/44/56/110 on CIFAR-10: He et al. 2016, Sec. 4.2.

Paper: SGD, momentum 0.9, weight decay 1e-4, batch 128 on two GPUs, lr 0.1
divided by 10 at 32k and 48k iterations, stopped at 64k (~182 epochs of the
45k/5k train/val split; we train on all 50k and evaluate on the 10k test set,
as the paper's Table 6 does). Augmentation: 4-pixel zero padding, random 32x32
crop, horizontal flip; per-pixel mean subtraction (we subtract the per-channel
mean, the common reading). He init, BN, no dropout. Published test error
(Table 6): 8.75 / 7.51 / 7.17 / 6.97 / 6.43 % for depth 20 / 32 / 44 / 56 / 110.
ResNet-110's first 400 iterations use lr 0.01 (warm-up, Sec. 4.2): the `depth=110`
config does the same.

Arguments: depth=20|32|44|56|110, cpu (a few epochs on the embedded `digits`), and
`fashion` or `mnist`: the same recipe on Fashion-MNIST or MNIST, read offline from their
IDX files (`data.idx_dir`, or Debian's dataset-fashion-mnist for `fashion`), one channel
normalised with the dataset's own mean/std, at the images' own 28x28 (4-pixel padding,
random 28x28 crop, flip), the same 64k iterations at 468 per epoch of 60k. `cpu` wins
over them. `epochs=N` trains N epochs instead of 64k iterations, with the paper's two
divisions of the rate at the same fractions of the run (50% and 75%). `val`: the paper's
validation study (Sec. 4.2, e.g. Fig. 6 and Table 7 run on it): 5,000 training images held
out as minival (`data.minival_size`; 150 of digits' 1,497 with `cpu`), training on the
other 45k with the rate still divided at 32k and 48k iterations (351 per epoch). It is
an option, not the default: Table 6's test errors come from training on all 50k.
"""

from cnn_jax.config import base_config, check_arg, choice, parse_arg
from cnn_jax.errors import UserError

IDX_DATASETS = {"mnist": "mnist", "fashion": "fashion_mnist"}
VAL_MINIVAL = 5_000  # Sec. 4.2's 45k/5k train/val split of CIFAR-10's training set
CPU_VAL_MINIVAL = 150  # the same tenth of digits' 1,497 training images

PAPER_TOP1 = {20: 91.25, 32: 92.49, 44: 92.83, 56: 93.03, 110: 93.57}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(
        a, {"depth", "cpu", "epochs", "val", *IDX_DATASETS}, "configs/resnet_cifar.py", takes_value={"depth", "epochs"}
    )
    chosen = [word for word in IDX_DATASETS if a.get(word)]
    if len(chosen) > 1:
        raise UserError("configs/resnet_cifar.py takes one of mnist and fashion; pass only one.")
    depth = choice(a, "depth", tuple(PAPER_TOP1), 20, "configs/resnet_cifar.py")  # the paper's 6n+2 depths
    c = base_config()
    c.model = f"resnet{depth}"
    c.dataset = "cifar10"
    c.eval_split = "test"
    c.data.recipe = "cifar"
    c.data.image_size = 32
    c.data.channels = 3
    c.batch_size = 128
    c.num_train_steps = 64_000
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "step"
    held_out = VAL_MINIVAL if a.get("val") else 0
    c.data.minival_size = held_out
    # 32k and 48k iterations at 390 steps per epoch of 50k images (351 of 45k with `val`).
    steps_per_epoch = (50_000 - held_out) // c.batch_size
    c.schedule.boundaries_epochs = (32_000 / steps_per_epoch, 48_000 / steps_per_epoch)
    if depth == 110:
        c.schedule.warmup_epochs = 400 / steps_per_epoch
    c.log_every_steps = 100
    if chosen and not a.get("cpu"):
        c.dataset = IDX_DATASETS[chosen[0]]
        c.data.image_size = 28
        c.data.channels = 1
        steps_per_epoch = (60_000 - held_out) // c.batch_size
        c.schedule.boundaries_epochs = (32_000 / steps_per_epoch, 48_000 / steps_per_epoch)
        if depth == 110:
            c.schedule.warmup_epochs = 400 / steps_per_epoch
    if a.get("epochs") and not a.get("cpu"):
        c.num_train_steps = -1
        c.num_epochs = _epochs(a["epochs"])
        c.schedule.boundaries_epochs = (c.num_epochs / 2, c.num_epochs * 3 / 4)
    if a.get("cpu"):
        c.dataset = "digits"
        c.data.recipe = "digits"
        c.data.channels = 1
        c.batch_size = 64
        c.num_train_steps = -1
        c.num_epochs = 6.0
        c.schedule.boundaries_epochs = (4.0, 5.0)
        c.schedule.warmup_epochs = 0.5
        c.log_every_steps = 10
        c.data.minival_size = CPU_VAL_MINIVAL if a.get("val") else 0
    return c


def _epochs(value) -> float:
    try:
        epochs = float(value)
    except (TypeError, ValueError):
        epochs = 0.0
    if not epochs > 0:
        raise UserError(
            f"configs/resnet_cifar.py: epochs={value} is not a positive number of epochs; pass e.g. epochs=40."
        )
    return epochs
