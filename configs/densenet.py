"""DenseNet-BC on ImageNet: Huang, Liu, van der Maaten & Weinberger 2017, "Densely
Connected Convolutional Networks", Sec. 4.1-4.2 (data, training) and Table 3.

Published (top-1 / top-5 accuracy, ILSVRC-2012 val, one 224x224 centre crop:
`cnn-jax eval --protocol center`; Table 3 also gives 10-crop):
    densenet121   74.98% / 92.29%   Table 3 (25.02% / 7.71% error)
    densenet169   76.20% / 93.15%   Table 3
    densenet201   77.42% / 93.66%   Table 3
    densenet161   77.8% / -         not in the paper: the authors' repository README
                                    (22.2% single-crop top-1 error)

Paper recipe (Sec. 4.2): SGD with Nesterov momentum 0.9 "without dampening", batch 256,
90 epochs, lr 0.1 divided by 10 at epochs 30 and 60, weight decay 1e-4, He init, no
dropout on ImageNet. Augmentation (Sec. 4.1): fb.resnet.torch's (scale and aspect
random crop 224, colour jitter, PCA lighting, flip): recipe `fb_resnet`.
Chosen, and why: weight decay on every parameter, as fb.resnet.torch's optim.sgd does.
DenseNet-161: the reference notes (unverified against the paper) that it was trained
with batch 128 for 100 epochs with a further x0.1 at epoch 90, lr unchanged; this
config follows that note for depth=161.

Arguments: depth=121|169|201|161 (default 121), cpu (4 steps on `digits` at 32x32,
batch 16, lr scaled linearly).
"""

from cnn_jax.config import base_config, check_arg, choice, cpu_variant, parse_arg

DEPTHS = (121, 169, 201, 161)
_ONE_CROP = "ILSVRC-2012 val, 1 centre crop 224"
PAPER = {
    "densenet121": {"top1": 74.98, "top5": 92.29, "protocol": _ONE_CROP + " (Table 3)"},
    "densenet169": {"top1": 76.2, "top5": 93.15, "protocol": _ONE_CROP + " (Table 3)"},
    "densenet201": {"top1": 77.42, "top5": 93.66, "protocol": _ONE_CROP + " (Table 3)"},
    "densenet161": {"top1": 77.8, "top5": None, "protocol": _ONE_CROP + " (authors' README, not the paper)"},
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"depth", "cpu"}, "configs/densenet.py", takes_value={"depth"})
    depth = str(choice(a, "depth", DEPTHS, 121, "configs/densenet.py"))
    c = base_config()
    c.model = f"densenet{depth}"
    c.dataset = "imagenet2012"
    c.data.recipe, c.data.image_size = "fb_resnet", 224
    c.batch_size = 256
    c.num_epochs = 90.0
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = True
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "step"
    c.schedule.boundaries_epochs = (30.0, 60.0)
    c.log_every_steps = 100
    if depth == "161":
        c.batch_size = 128
        c.num_epochs = 100.0
        c.schedule.boundaries_epochs = (30.0, 60.0, 90.0)
    if a.get("cpu"):
        cpu_variant(c, 32)
    return c
