"""Inception-v3: Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016, "Rethinking the Inception
Architecture for Computer Vision", Sec. 7 (label smoothing) and Sec. 8 (training).

Published (Table 3, "Inception-v3" with BN-auxiliary): 78.8% top-1 / 94.4% top-5
(21.2% / 5.6% error), one 299x299 crop of one model, on the 48,238 non-blacklisted
ILSVRC-2012 val images (the full 50,000 are about 0.2 / 0.1 points worse); evaluated
with a running average of the parameters. Compare with `cnn-jax eval --protocol center`.

Paper recipe (Sec. 8): 100 epochs, RMSProp with decay 0.9 and epsilon 1.0, lr 0.045
x0.94 every 2 epochs (schedule `exponential`), gradient clipping at 2.0 (global norm);
label smoothing 0.1 (Sec. 7); the BN-auxiliary head on the last 17x17 grid. 50
replicas of batch 32, asynchronous.
Chosen, and why:
- batch 32, lr 0.045: each update of the paper's asynchronous training applied one
  replica's batch of 32 at this rate; synchronous batch-32 steps are that update
  stream without the staleness. For a global batch B the rate scales with it
  (`optimizer.lr_reference_batch = 32`: 0.045 * B / 32; add warmup when B is large).
- RMSProp momentum 0.9: not in the paper; TensorFlow's Inception training code
  (RMSPROP_MOMENTUM = 0.9 beside decay 0.9 and epsilon 1.0). The update is TensorFlow
  v1's RMSPropOptimizer: epsilon inside the square root and the mean-square
  accumulator starting at 1 (`optimizer.rmsprop_initial_scale = 1.0`), which damps
  the first steps.
- evaluation with a running average of the parameters (Sec. 8): `ema_decay = 0.9999`,
  TF's ExponentialMovingAverage value in the Inception training code, with its
  num_updates warmup (decay min(0.9999, (1+t)/(10+t)), `ema_warmup`); BN statistics
  are averaged too (TF-slim averages all model variables). results.json says
  `"eval_weights": "ema"`.
- weight decay 4e-5 on kernels: the Xception paper (Sec. 4.3) gives this as
  Inception-v3's "carefully tuned" rate; TF-slim regularises weights only.
- aux loss weight 0.4, dropout keep 0.8: not in the paper; TF-slim's trainer and net.
- recipe `inception` (TF's Inception preprocessing): the paper describes no augmentation.

Arguments: cpu (4 steps on `digits` at 75x75, the smallest input the network takes,
with the auxiliary head off: it needs a 17x17 map, i.e. 299x299 inputs; batch 16, lr
scaled linearly by the rule above).
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg

PAPER = {
    "inception_v3": {
        "top1": 78.8,
        "top5": 94.4,
        "protocol": "1 crop 299, 1 model, 48,238 non-blacklisted ILSVRC-2012 val images (Table 3)",
    }
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"cpu"}, "configs/inception_v3.py", takes_value=set())
    c = base_config()
    c.model = "inception_v3"
    c.model_kwargs.aux_logits = True
    c.model_kwargs.dropout_rate = 0.2
    c.loss.label_smoothing = 0.1
    c.loss.aux_weight = 0.4
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
    c.ema_decay = 0.9999  # evaluate the running average (Sec. 8)
    c.optimizer.clip_norm = 2.0
    c.optimizer.weight_decay = 4e-5
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "exponential"
    c.schedule.factor = 0.94
    c.schedule.decay_every_epochs = 2.0
    c.log_every_steps = 100
    if a.get("cpu"):
        c.model_kwargs.aux_logits = False
        cpu_variant(c, 75)
    return c
