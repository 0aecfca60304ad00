"""Inception-ResNet-v2: Szegedy, Ioffe, Vanhoucke & Alemi 2017, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning", Sec. 4
(training methodology) and Sec. 5 (results).

Published (Table 2): 80.1% top-1 / 95.1% top-5 (19.9% / 4.9% error), one crop of one
model on the non-blacklisted ILSVRC-2012 val images, evaluated with a running average
of the parameters. Compare with `cnn-jax eval --protocol center` at 299.

Paper recipe (Sec. 4): 20 replicas, RMSProp with decay 0.9 and epsilon 1.0, lr 0.045
x0.94 every 2 epochs (schedule `exponential`). The network scales its residuals (0.1
to 0.3, Sec. 3.3) itself; dropout keep 0.8 before the classifier (Fig. 15's schema).
The paper states no batch size, length, weight decay, label smoothing, clipping or
augmentation. Chosen, as Inception-v3's recipe (configs/inception_v3.py), whose
optimiser settings this paper repeats word for word:
- batch 32 per update at lr 0.045 (the per-replica batch of the asynchronous setup;
  another batch B trains at 0.045 * B / 32: `optimizer.lr_reference_batch = 32`),
  100 epochs, RMSProp momentum 0.9, gradient clipping at 2.0, label smoothing 0.1.
- weight decay 4e-5 on kernels: TF-slim's Inception-ResNet-v2 default.
- recipe `inception` (TF's Inception preprocessing).
- TensorFlow v1's RMSProp (epsilon inside the square root, mean-square accumulator
  starting at 1: `optimizer.rmsprop_initial_scale = 1.0`) and evaluation with the
  running average of the parameters (`ema_decay = 0.9999` with TF's num_updates
  warmup; BN statistics averaged too), as for Inception-v3.
- no auxiliary loss: the network here is Keras's port, which has no auxiliary head
  (TF-slim's has one, weighted 0.4 by its trainer).

Arguments: cpu (4 steps on `digits` at 75x75, the smallest input the network takes;
batch 16, lr scaled linearly).
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg

PAPER = {
    "inception_resnet_v2": {
        "top1": 80.1,
        "top5": 95.1,
        "protocol": "1 crop, 1 model, non-blacklisted ILSVRC-2012 val (Table 2)",
    }
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"cpu"}, "configs/inception_resnet_v2.py", takes_value=set())
    c = base_config()
    c.model = "inception_resnet_v2"
    c.model_kwargs.dropout_rate = 0.2
    c.loss.label_smoothing = 0.1
    c.dataset = "imagenet2012"
    c.data.recipe, c.data.image_size = "inception", 299
    c.batch_size = 32
    c.num_epochs = 100.0
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 0.045
    c.optimizer.lr_reference_batch = 32  # per replica batch of 32
    c.optimizer.rho = 0.9
    c.optimizer.eps = 1.0
    c.optimizer.momentum = 0.9
    c.optimizer.rmsprop_initial_scale = 1.0  # TF v1 RMSProp
    c.ema_decay = 0.9999  # evaluate the running average (Sec. 4)
    c.optimizer.clip_norm = 2.0
    c.optimizer.weight_decay = 4e-5
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "exponential"
    c.schedule.factor = 0.94
    c.schedule.decay_every_epochs = 2.0
    c.log_every_steps = 100
    if a.get("cpu"):
        cpu_variant(c, 75)
    return c
