"""A tiny run with every part of the state a resume must restore: BatchNorm running
statistics, dropout, random augmentation (pad-and-crop and flips), a moving average of
the weights, and a warm-up followed by a cosine decay. MobileNet v1 at a quarter width on
`digits` (46 steps per epoch at batch 32) with MobileNet's RMSProp (configs/mobilenet_v1.py,
`cpu`), for 60 steps; the tests set the length and the log, eval and checkpoint periods."""

from cnn_jax.config import base_config


def get_config(arg=None):
    c = base_config()
    c.model = "mobilenet_v1"
    c.model_kwargs.alpha = 0.25
    c.model_kwargs.dropout_rate = 0.3
    c.dataset = "digits"
    c.data.recipe = "cifar"  # 4-pixel zero padding, random crop, random flip
    c.data.channels = 1
    c.batch_size = 32
    c.num_train_steps = 60
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 0.01
    c.optimizer.rho = 0.9
    c.optimizer.momentum = 0.9
    c.optimizer.eps = 1.0
    c.optimizer.weight_decay = 4e-5
    c.optimizer.weight_decay_mask = "kernels"
    c.schedule.name = "cosine"
    c.schedule.warmup_epochs = 0.25
    c.schedule.end_lr_fraction = 0.1
    c.ema_decay = 0.9
    c.log_every_steps = 1
    c.eval_every_steps = 60
    c.checkpoint_every_steps = 60
    c.progress_bar = False
    return c
