"""AlexNet: Krizhevsky, Sutskever & Hinton 2012, Sec. 4-5; `owt` selects the one-tower
network of torchvision (Krizhevsky 2014, "One weird trick") with torchvision's recipe.

Published, alexnet (Table 2, "1 CNN"): 59.3% top-1 / 81.8% top-5 (40.7% / 18.2% error)
on ILSVRC-2012 val, softmax averaged over 10 patches (the four corner and the centre
224 crops of the 256x256 image, and their mirrors): `cnn-jax eval --protocol 10crop`.
alexnet_owt has no paper number; torchvision publishes 56.522% / 79.066% for it (one
centre 224 crop of the image resized to 256).

Paper recipe (Sec. 5): SGD, batch 128, momentum 0.9, weight decay 0.0005 on every weight
(the paper's update rule has no exception for biases), lr 0.01 divided by 10 "when the
validation error rate stopped improving", three times in roughly 90 passes; dropout 0.5
on FC6/FC7 (Sec. 4.2). Augmentation (Sec. 4.1, recipe `alexnet`): the central 256x256 of
the image resized to shorter side 256, random crops and mirrors, PCA lighting sigma 0.1,
mean subtraction; crops are 227x227 because the paper's "224" cannot give its 55x55
conv1 map. Init (N(0, 0.01), biases 1 in conv2/4/5 and FC6/7) is the model's.
Chosen (the paper watched the error by hand): schedule `plateau`, one pass per epoch
over minival (10,000 training images held out, since the paper's validation set is the
one it reports), lr x0.1 after 5 passes without a 0.1-point top-1 gain (patience 5 epochs
allows about three drops in 90 epochs, as the paper made); 90 epochs.

owt (torchvision's references/classification, README): SGD momentum 0.9, batch 256,
lr 0.01 (the README's 0.1 default is too high without BatchNorm), weight decay 1e-4,
x0.1 every 30 epochs, 90 epochs, RandomResizedCrop 224 + flip (recipe `torchvision`).

Arguments: owt, cpu (4 steps on `digits`, lr scaled linearly to batch 16, at 67x67 for
alexnet and 63x63 for owt: the smallest inputs that leave a map for the third max-pool;
eval every 2 steps with patience 1 so that the plateau rule runs).
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg

PAPER = {
    "alexnet": {"top1": 59.3, "top5": 81.8, "protocol": "ILSVRC-2012 val, 10-crop (Table 2, 1 CNN)"},
    "alexnet_owt": {"top1": None, "top5": None, "protocol": None},
}


def get_config(arg=None):
    a = parse_arg(arg)
    check_arg(a, {"owt", "cpu"}, "configs/alexnet.py", takes_value=set())
    c = base_config()
    c.dataset = "imagenet2012"
    c.optimizer.name = "sgd"
    c.optimizer.momentum = 0.9
    c.optimizer.lr = 0.01
    c.num_epochs = 90.0
    c.model_kwargs.dropout_rate = 0.5
    c.log_every_steps = 100
    if a.get("owt"):
        c.model = "alexnet_owt"
        c.data.recipe, c.data.image_size = "torchvision", 224
        c.batch_size = 256
        c.optimizer.weight_decay = 1e-4
        c.schedule.name = "step"
        c.schedule.boundaries_epochs = (30.0, 60.0)
    else:
        c.model = "alexnet"
        c.data.recipe, c.data.image_size = "alexnet", 227
        c.batch_size = 128
        c.optimizer.weight_decay = 5e-4
        c.schedule.name = "plateau"
        c.schedule.patience = 5
        c.data.minival_size = 10_000  # the plateau watches these training images, not the reported val
    if a.get("cpu"):
        cpu_variant(c, size=63 if a.get("owt") else 67)
    return c
