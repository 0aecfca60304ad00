"""MobileNet v1 (Howard et al. 2017, Sec. 4).

Paper: "RMSprop with asynchronous gradient descent similar to Inception V3",
less regularisation and augmentation than for large models (no side heads, no
label smoothing, smaller crops), very little or no weight decay on the depthwise
filters; 70.6% top-1 for 1.0 MobileNet-224 (crop protocol unstated). Not stated,
chosen from the TF-slim MobileNet training setup the paper's authors published:
RMSProp (decay 0.9, momentum 0.9, epsilon 1.0), lr 0.045 for batch 96 per worker
scaled linearly to the global batch, x0.98 per epoch, weight decay 4e-5 on
kernels only, label smoothing 0.1 off (the paper says none), Inception crops.

Arguments: alpha=0.25|0.5|0.75|1.0 (width multiplier), cpu (a few epochs on digits), and
`fashion`: Fashion-MNIST on one channel (offline from its IDX files), resized to 32x32
because the ImageNet network, kept as it is, halves its input five times (28x28 would leave
the last layers an empty map); the paper's RMSProp at the per-worker batch of 96 scaled to
128, decayed x0.9 per epoch over `epochs=N` (default 30), with the CIFAR augmentation
(4-pixel translation, flips) and the dataset's own mean/std.
"""

from cnn_jax.config import base_config, check_arg, choice, parse_arg, positive_number

FILE = "configs/mobilenet_v1.py"
ALPHAS = (0.25, 0.5, 0.75, 1.0)  # the width multipliers of the paper's Table 6


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"alpha", "cpu", "fashion", "epochs"}, FILE, takes_value={"alpha", "epochs"})
    c = base_config()
    c.model = "mobilenet_v1"
    c.model_kwargs.alpha = choice(a, "alpha", ALPHAS, 1.0, FILE)
    c.dataset = "imagenet2012"
    c.data.recipe = "inception"
    c.data.image_size = 224
    c.batch_size = 1024
    c.num_epochs = 100.0
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 0.045 * 1024 / 96
    c.optimizer.rho = 0.9
    c.optimizer.momentum = 0.9
    c.optimizer.eps = 1.0
    c.optimizer.weight_decay = 4e-5
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "exponential"
    c.schedule.factor = 0.98
    c.schedule.decay_every_epochs = 1.0
    c.schedule.warmup_epochs = 2.0
    c.log_every_steps = 100
    if a.get("fashion") and not a.get("cpu"):
        c.dataset = "fashion_mnist"
        c.eval_split = "test"
        c.data.recipe = "cifar"
        c.data.image_size = 32
        c.data.channels = 1
        c.batch_size = 128
        c.num_epochs = positive_number(a, "epochs", 30, FILE)
        c.optimizer.lr = 0.045 * 128 / 96
        c.schedule.factor = 0.9
        c.schedule.warmup_epochs = 1.0
    if a.get("cpu"):
        c.dataset = "digits"
        c.data.recipe = "digits"
        c.data.image_size = 32
        c.data.channels = 1
        c.batch_size = 64
        c.num_epochs = 8.0
        c.optimizer.lr = 0.01
        c.schedule.decay_every_epochs = 1.0
        c.schedule.factor = 0.8
        c.schedule.warmup_epochs = 1.0
        c.log_every_steps = 10
    return c
