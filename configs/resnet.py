"""ResNet on ImageNet: He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image
Recognition", Sec. 3.4 (implementation) and Tables 2-3; `v1_5` selects torchvision's
ResNet v1.5 with torchvision's recipe.

Published, v1 (top-1 / top-5 accuracy, ILSVRC-2012 val, standard 10-crop testing:
`cnn-jax eval --protocol 10crop`):
    resnet18    72.12% / -        Table 2 (no top-5 given)
    resnet34    74.97% / 92.24%   Table 2 and Table 3 "ResNet-34 A"
    resnet50    77.15% / 93.29%   Table 3
    resnet101   78.25% / 93.95%   Table 3
    resnet152   78.57% / 94.29%   Table 3
The 18/34 numbers are for option A shortcuts (zero-padding); the networks here use
option B (projections, as torchvision), for which Table 3 gives ResNet-34 75.48% /
92.54%. `--config.model_kwargs.shortcut=A` builds option A.
v1_5 has no paper number; torchvision publishes (one centre 224 crop of 256) 69.758 /
89.078 (18), 73.314 / 91.420 (34), 76.130 / 92.862 (50), 77.374 / 93.546 (101) and
78.312 / 94.046 (152).

Paper recipe (Sec. 3.4): SGD, batch 256, momentum 0.9, weight decay 1e-4, no dropout,
lr 0.1 "divided by 10 when the error plateaus", up to 600K iterations (120 epochs);
BN after every conv, He init, from scratch. Augmentation: shorter side S ~ U[256, 480],
random 224 crop or its flip, per-pixel mean subtracted, AlexNet's colour augmentation:
recipe `resnet`.
The rate is stated for batch 256, so `optimizer.lr_reference_batch = 256` applies
Goyal et al.'s linear scaling rule: another --config.batch_size=B trains at 0.1 * B / 256
(add warmup, --config.schedule.warmup_epochs=5, for large B, as they do).
Chosen, and why: schedule `plateau` (one pass per epoch over minival, 10,000 training
images held out, x0.1 after 5 passes without a 0.1-point top-1 gain); weight decay on
every parameter (Caffe's default, which the authors' code used). Not reproduced: the
official code's recomputation of the BN statistics over the training set after
training (the engine keeps BN's running averages).
v1_5 (torchvision's references/classification): SGD 0.9, batch 256, lr 0.1, weight
decay 1e-4, x0.1 every 30 epochs, 90 epochs, RandomResizedCrop 224 + flip (recipe
`resnet_v1_5`). Depth 18/34 have no separate v1.5 network (basic blocks have no 1x1
conv to move the stride from), so `v1_5` only changes their recipe.

Arguments: depth=18|34|50|101|152 (default 50); v1 (default, the paper) or v1_5; cpu
(4 steps on `digits` at 32x32, batch 16, lr scaled linearly by the rule above; for the paper recipe eval
every 2 steps with patience 1 so that the plateau rule runs).
"""

from cnn_jax.config import base_config, check_arg, choice, cpu_variant, parse_arg
from cnn_jax.errors import UserError

DEPTHS = (18, 34, 50, 101, 152)
_TEN_CROP = "ILSVRC-2012 val, 10-crop"
PAPER = {
    "resnet18": {"top1": 72.12, "top5": None, "protocol": _TEN_CROP + " (Table 2, option A)"},
    "resnet34": {"top1": 74.97, "top5": 92.24, "protocol": _TEN_CROP + " (Tables 2-3, option A)"},
    "resnet50": {"top1": 77.15, "top5": 93.29, "protocol": _TEN_CROP + " (Table 3, option B)"},
    "resnet101": {"top1": 78.25, "top5": 93.95, "protocol": _TEN_CROP + " (Table 3, option B)"},
    "resnet152": {"top1": 78.57, "top5": 94.29, "protocol": _TEN_CROP + " (Table 3, option B)"},
    **{f"resnet{d}_v1_5": {"top1": None, "top5": None, "protocol": None} for d in (50, 101, 152)},
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"depth", "v1", "v1_5", "cpu"}, "configs/resnet.py", takes_value={"depth"})
    if a.get("v1") and a.get("v1_5"):
        raise UserError("configs/resnet.py takes v1 or v1_5, not both.")
    depth, v1_5 = choice(a, "depth", DEPTHS, 50, "configs/resnet.py"), bool(a.get("v1_5"))
    c = base_config()
    c.model = f"resnet{depth}_v1_5" if v1_5 and depth >= 50 else f"resnet{depth}"
    c.model_kwargs.shortcut = "B"
    c.dataset = "imagenet2012"
    c.data.image_size = 224
    c.batch_size = 256
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    c.optimizer.lr_reference_batch = 256  # both recipes quote 0.1 per 256 images
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    c.log_every_steps = 100
    if v1_5:
        c.data.recipe = "resnet_v1_5"
        c.num_epochs = 90.0
        c.schedule.name = "step"
        c.schedule.boundaries_epochs = (30.0, 60.0)
    else:
        c.data.recipe = "resnet"
        c.num_epochs = 120.0
        c.schedule.name = "plateau"
        c.schedule.patience = 5
        c.data.minival_size = 10_000  # the plateau watches these training images, not the reported val
    if a.get("cpu"):
        cpu_variant(c, 32)
    return c
