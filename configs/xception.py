"""Xception: Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions",
Sec. 4.3 (optimisation and regularisation) and Sec. 4.4 (infrastructure).

Published (Table 1): 79.0% top-1 / 94.5% top-5 (printed as accuracies 0.790 / 0.945),
one crop of one model at 299x299 on the non-blacklisted ILSVRC-2012 val images, with
Polyak averaging at inference. Compare with `cnn-jax eval --protocol center`.

Paper recipe (Sec. 4.3): SGD, momentum 0.9, lr 0.045 x0.94 every 2 epochs (schedule
`exponential`), weight decay 1e-5 (Inception-v3's 4e-5 was "quite suboptimal"), dropout
0.5 before the classifier, no auxiliary tower; synchronous data parallelism on 60 GPUs,
about 3 days per run.
Chosen, and why:
- batch 256: not stated; the common ImageNet batch, at which SGD's usual rate (0.1 in
  Goyal et al. and torchvision) is the same order as the paper's 0.045.
- 100 epochs: not stated; the paper tuned its other settings for Inception-v3, which
  trains 100 epochs.
- weight decay on kernels only (Keras regularises kernels); no label smoothing (the
  paper lists its regularisers, weight decay and dropout, and names no other).
- recipe `inception` (TF's Inception preprocessing): the paper names no augmentation.
Not reproduced: Polyak averaging of the parameters (the engine has no parameter
averaging; evaluation uses the last weights).

Arguments: cpu (4 steps on `digits` at 32x32, which the network takes because its
strided pools pad; batch 16, lr scaled linearly).
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg

PAPER = {
    "xception": {
        "top1": 79.0,
        "top5": 94.5,
        "protocol": "1 crop 299, 1 model, non-blacklisted ILSVRC-2012 val (Table 1)",
    }
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"cpu"}, "configs/xception.py", takes_value=set())
    c = base_config()
    c.model = "xception"
    c.model_kwargs.dropout_rate = 0.5
    c.dataset = "imagenet2012"
    c.data.recipe, c.data.image_size = "inception", 299
    c.batch_size = 256
    c.num_epochs = 100.0
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.045
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-5
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "exponential"
    c.schedule.factor = 0.94
    c.schedule.decay_every_epochs = 2.0
    c.log_every_steps = 100
    if a.get("cpu"):
        cpu_variant(c, 32)
    return c
