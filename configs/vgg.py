"""VGG: Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", Sec. 3.1 (training), Sec. 3.2 (testing), Table 3 (results).

Published, best single-scale result per configuration (Table 3; top-1 / top-5 accuracy
on ILSVRC-2012 val, dense evaluation at one test scale Q with flips, Sec. 3.2:
`cnn-jax eval --protocol dense`):
    A      vgg11      70.4% / 89.6%   trained at S=256, Q=256
    A-LRN  vgg11_lrn  70.3% / 89.5%   trained at S=256, Q=256
    B      vgg13      71.3% / 90.1%   trained at S=256, Q=256
    C      vgg16_c    72.7% / 91.2%   trained with S in [256, 512], Q=384
    D      vgg16      74.4% / 91.9%   trained with S in [256, 512], Q=384
    E      vgg19      74.5% / 92.0%   trained with S in [256, 512], Q=384
The `bn` variants (vggNN_bn, torchvision's, not in the paper) have no paper number;
torchvision publishes 70.370 / 89.810 (A), 71.586 / 90.374 (B), 73.360 / 91.516 (D)
and 74.218 / 91.842 (E), one centre 224 crop of 256.

Paper recipe (Sec. 3.1): SGD, batch 256, momentum 0.9, weight decay 5e-4, dropout 0.5 on
FC6/FC7, lr 0.01 divided by 10 when validation accuracy stopped improving (three
times), stopped after 370K iterations (74 epochs). Augmentation: random 224 crop of the
image rescaled to shorter side S, flips, AlexNet's RGB colour shift: recipe `vgg_s256`
for A/A-LRN/B and `vgg_jitter` (S ~ U[256, 512], dense eval at Q=384) for C/D/E, the
settings of the published numbers above (`--config.data.recipe=vgg_s384` for S=384).
Chosen, and why:
- schedule `plateau`: one pass per epoch over minival (10,000 training images held
  out; the paper watched its validation set, which it reports), x0.1 after 5 passes
  without a 0.1-point top-1 gain (about three drops in 74 epochs, as in the paper).
- every net starts from the model's init (He for convs, N(0, 0.01) for FC). The paper
  initialised B-E from a trained net A and the S=384 / jittered nets from S=256 ones;
  its own post-submission note says Glorot-style random init works without that, and
  the engine cannot start a run from another run's weights.
bn: torchvision's recipe (references/classification; its README trains the *_bn nets
with the defaults): SGD 0.9, batch 256, lr 0.1, weight decay 1e-4, x0.1 every 30 epochs,
90 epochs, RandomResizedCrop 224 + flip (recipe `torchvision`). torchvision ships no
BN net for A-LRN or C, so `A-LRN,bn` and `C,bn` are refused.

Arguments: one of A, A-LRN (or A_LRN), B, C, D (default), E; bn; cpu (4 steps on
`digits` at 32x32 with the full FC6/FC7 widths, lr scaled linearly to batch 16; for
the paper recipe eval every 2 steps with patience 1 so that the plateau rule runs).
E.g. `configs/vgg.py:D,bn,cpu`.
"""

from cnn_jax.config import base_config, check_arg, cpu_variant, parse_arg
from cnn_jax.errors import UserError

MODELS = {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}
BN_MODELS = {"A": "vgg11_bn", "B": "vgg13_bn", "D": "vgg16_bn", "E": "vgg19_bn"}
PAPER_SCALE = {"A": 256, "A-LRN": 256, "B": 256}  # the others: S ~ U[256, 512]

_DENSE = "ILSVRC-2012 val, dense eval at one scale Q with flips (Table 3)"
PAPER = {
    "vgg11": {"top1": 70.4, "top5": 89.6, "protocol": _DENSE + ", S=256, Q=256"},
    "vgg11_lrn": {"top1": 70.3, "top5": 89.5, "protocol": _DENSE + ", S=256, Q=256"},
    "vgg13": {"top1": 71.3, "top5": 90.1, "protocol": _DENSE + ", S=256, Q=256"},
    "vgg16_c": {"top1": 72.7, "top5": 91.2, "protocol": _DENSE + ", S in [256, 512], Q=384"},
    "vgg16": {"top1": 74.4, "top5": 91.9, "protocol": _DENSE + ", S in [256, 512], Q=384"},
    "vgg19": {"top1": 74.5, "top5": 92.0, "protocol": _DENSE + ", S in [256, 512], Q=384"},
    **{name: {"top1": None, "top5": None, "protocol": None} for name in BN_MODELS.values()},
}


def _normalise(arg: dict) -> dict:
    """'a_lrn' / 'A_LRN' / 'A-LRN' -> 'A-LRN'; other words unchanged."""
    out = {}
    for key, value in arg.items():
        letter = key.upper().replace("_", "-")
        out[letter if letter in MODELS else key] = value
    return out


def _letter(arg: dict) -> str:
    letters = [k for k in arg if k in MODELS]
    if len(letters) > 1:
        raise UserError(
            f"configs/vgg.py takes one configuration, got {', '.join(letters)}; pick one of A, A-LRN, B, C, D, E."
        )
    return letters[0] if letters else "D"


def get_config(arg=None):
    a = _normalise(parse_arg(arg))
    check_arg(a, set(MODELS) | {"bn", "cpu"}, "configs/vgg.py", takes_value=set())
    letter = _letter(a)
    if a.get("bn") and letter not in BN_MODELS:
        raise UserError(
            f"VGG config {letter} has no BatchNorm variant (torchvision has A, B, D, E); "
            f"drop `bn` or pick one of {', '.join(BN_MODELS)}."
        )
    c = base_config()
    c.model = BN_MODELS[letter] if a.get("bn") else MODELS[letter]
    c.model_kwargs.dropout_rate = 0.5
    c.model_kwargs.fc_features = (4096, 4096)
    c.dataset = "imagenet2012"
    c.data.image_size = 224
    c.batch_size = 256
    c.optimizer.name = "sgd"
    c.optimizer.momentum = 0.9
    c.log_every_steps = 100
    if a.get("bn"):
        c.data.recipe = "torchvision"
        c.num_epochs = 90.0
        c.optimizer.lr = 0.1
        c.optimizer.weight_decay = 1e-4
        c.schedule.name = "step"
        c.schedule.boundaries_epochs = (30.0, 60.0)
    else:
        c.data.recipe = f"vgg_s{PAPER_SCALE[letter]}" if letter in PAPER_SCALE else "vgg_jitter"
        c.num_epochs = 74.0
        c.optimizer.lr = 0.01
        c.optimizer.weight_decay = 5e-4
        c.schedule.name = "plateau"
        c.schedule.patience = 5
        c.data.minival_size = 10_000  # the plateau watches these training images, not the reported val
    if a.get("cpu"):
        cpu_variant(c, 32)
    return c
