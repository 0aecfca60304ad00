"""GoogLeNet (Inception v1): Szegedy et al. 2015, "Going Deeper with Convolutions",
Sec. 5 (auxiliary classifiers) and Sec. 6 (training methodology).

Published (Table 3, 1 model, 1 crop): 89.93% top-5 (10.07% error) on ILSVRC-2014 val;
the paper gives no top-1. Compare with `cnn-jax eval --protocol center`. For scale, the
BVLC replication below reports 68.7% / 88.9% (one centre crop).

Paper recipe (Sec. 5-6): asynchronous SGD, momentum 0.9, "a fixed learning rate
schedule (decreasing the learning rate by 4% every 8 epochs)": schedule `exponential`,
x0.96 every 8 epochs. Two auxiliary classifiers (on 4a and 4d, dropout 0.7) whose
losses are weighted 0.3; dropout 0.4 before the main classifier. Augmentation: crops
of 8%-100% of the image area with aspect ratio in [3/4, 4/3], Andrew Howard's
photometric distortions, random interpolation: recipe `googlenet` (TF's Inception
preprocessing).
Chosen, and why: the paper states no batch size, learning rate, weight decay or
length. The values are those of the BVLC Caffe replication (models/bvlc_googlenet,
solver.prototxt), which runs the paper's schedule exactly (x0.96 every 320K
iterations of batch 32 = 8 epochs): batch 32, lr 0.01, weight decay 2e-4 on kernels
only (its biases have decay_mult 0), 10M iterations = 250 epochs. The paper's
"Polyak averaging ... to create the final model used at inference time" is
`ema_decay`; the paper gives no rate, so 0.9999 with TF's warm-up (the rate the
Inception-v3 paper's TF code used) is chosen. Not reproduced: the asynchronous updates
and BVLC's doubled learning rate for biases.

Arguments: cpu (4 steps on `digits` at 96x96, the auxiliary heads on: they need
inputs of at least 80; lr scaled linearly to batch 16).
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg

PAPER = {
    "googlenet": {
        "top1": None,
        "top5": 89.93,
        "protocol": "ILSVRC-2014 val, 1 model, 1 crop (Table 3); no top-1 published",
    }
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"cpu"}, "configs/googlenet.py", takes_value=set())
    c = base_config()
    c.model = "googlenet"
    c.model_kwargs.aux_logits = True
    c.model_kwargs.dropout_rate = 0.4
    c.model_kwargs.aux_dropout_rate = 0.7
    c.loss.aux_weight = 0.3
    c.dataset = "imagenet2012"
    c.data.recipe, c.data.image_size = "googlenet", 224
    c.batch_size = 32
    c.num_epochs = 250.0
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.01
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 2e-4
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "exponential"
    c.schedule.factor = 0.96
    c.schedule.decay_every_epochs = 8.0
    c.ema_decay = 0.9999
    c.log_every_steps = 100
    if a.get("cpu"):
        cpu_variant(c, 96)
    return c
