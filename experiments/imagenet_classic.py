"""Every classic ImageNet architecture at its paper's recipe (configs/<family>.py), next to
the number its paper published.

Published: the papers' ILSVRC-2012 validation accuracy (100 - error), as the architecture
reference file gives it (its `paper_top1`/`paper_top5`, also in cnn_jax/models/reference.json);
`source` says which table and which test protocol. Most papers evaluated more generously
than our single centre crop (AlexNet, ZFNet and ResNet 10 crops, VGG dense multi-crop with
flips, Inception-v3/-ResNet-v2 and Xception on the non-blacklisted 48,238 images), so a
centre-crop run is expected to land somewhat below. Each published number carries its
protocol, and entries whose paper used 10 crops or dense evaluation also evaluate that
protocol after training (`protocols`, as `cnn-jax eval --protocol 10crop|dense` does), so
the table's Δ sets like against like; a centre-crop row against a 10-crop paper says
"paper: 10-crop" instead of a number. GoogLeNet published no top-1; DenseNet-161's number
is from the authors' repository, not the paper.

Needs ImageNet (`imagenet2012` prepared in TFDS's data_dir from the manual download);
cannot run offline.

    cnn-jax reproduce experiments/imagenet_classic.py --workdir runs/imagenet_classic [--only resnet50]
"""

_TEN = "10-crop (4 corners + centre, and their flips)"
_VGG = "Simonyan & Zisserman 2015, Table 3: single test scale, dense evaluation + flips"
_ONE_299 = "one 299 px crop on the 48,238 non-blacklisted val images"


_SUBSET = "non-blacklisted val subset (48,238)"


def _entry(name, config, top1, top5, source, protocol, input_size=224, split="validation"):
    """An entry whose paper evaluated with `protocol` on `split` of ILSVRC-2012 at `input_size`
    px, one model; a 10-crop or dense paper's protocol is evaluated after training too."""
    published = {
        "top1": top1,
        "top5": top5,
        "protocol": protocol,
        "input_size": input_size,
        "split": split,
        "dataset": "imagenet2012",
        "models": 1,
        "source": source,
    }
    entry = {"name": name, "config": config, "published": published}
    if protocol in ("10crop", "dense"):
        entry["protocols"] = [protocol]
    return entry


_HE_B = "He et al. 2016, Table 3 (option B): " + _TEN
_HUANG = "Huang et al. 2017, Table 3: single 224 crop"

ENTRIES = [
    _entry(
        "alexnet", "configs/alexnet.py", 59.3, 81.8, "Krizhevsky et al. 2012, Table 2: 1 CNN, " + _TEN, "10crop", 227
    ),
    _entry(
        "zfnet",
        "configs/zfnet.py",
        61.6,
        83.5,
        "Zeiler & Fergus 2014, Table 2: 1 convnet as Fig. 3; test crops not stated (likely 10)",
        "unstated",
    ),
    _entry("vgg11", "configs/vgg.py:A", 70.4, 89.6, _VGG + " (config A, S=Q=256)", "dense", None),
    _entry("vgg13", "configs/vgg.py:B", 71.3, 90.1, _VGG + " (config B, S=Q=256)", "dense", None),
    _entry("vgg16_c", "configs/vgg.py:C", 72.7, 91.2, _VGG + " (config C, best single scale)", "dense", None),
    _entry("vgg16", "configs/vgg.py:D", 74.4, 91.9, _VGG + " (config D, best single scale)", "dense", None),
    _entry("vgg19", "configs/vgg.py:E", 74.5, 92.0, _VGG + " (config E, best single scale)", "dense", None),
    _entry(
        "googlenet",
        "configs/googlenet.py",
        None,
        89.93,
        "Szegedy et al. 2015, Table 3: 1 model, 1 crop (top-5 only; no top-1 published)",
        "center",
    ),
    _entry(
        "inception_v3",
        "configs/inception_v3.py",
        78.8,
        94.4,
        "Szegedy et al. 2016, Table 3: " + _ONE_299,
        "center",
        299,
        _SUBSET,
    ),
    _entry(
        "inception_resnet_v2",
        "configs/inception_resnet_v2.py",
        80.1,
        95.1,
        "Szegedy et al. 2017, Table 2: " + _ONE_299,
        "center",
        299,
        _SUBSET,
    ),
    _entry("xception", "configs/xception.py", 79.0, 94.5, "Chollet 2017, Table 1: " + _ONE_299, "center", 299, _SUBSET),
    _entry(
        "resnet18",
        "configs/resnet.py:depth=18",
        72.12,
        None,
        "He et al. 2016, Table 2 (option A shortcuts): " + _TEN + "; no top-5 published",
        "10crop",
    ),
    _entry(
        "resnet34",
        "configs/resnet.py:depth=34",
        74.97,
        92.24,
        "He et al. 2016, Tables 2-3 (option A; top-5 of 'ResNet-34 A'): " + _TEN,
        "10crop",
    ),
    _entry("resnet50", "configs/resnet.py:depth=50", 77.15, 93.29, _HE_B, "10crop"),
    _entry("resnet101", "configs/resnet.py:depth=101", 78.25, 93.95, _HE_B, "10crop"),
    _entry("resnet152", "configs/resnet.py:depth=152", 78.57, 94.29, _HE_B, "10crop"),
    _entry("densenet121", "configs/densenet.py:depth=121", 74.98, 92.29, _HUANG, "center"),
    _entry("densenet169", "configs/densenet.py:depth=169", 76.20, 93.15, _HUANG, "center"),
    _entry("densenet201", "configs/densenet.py:depth=201", 77.42, 93.66, _HUANG, "center"),
    _entry(
        "densenet161",
        "configs/densenet.py:depth=161",
        77.8,
        None,
        "authors' repository README (not the paper): single 224 crop, Torch model",
        "center",
    ),
    _entry(
        "mobilenet_v1",
        "configs/mobilenet_v1.py",
        70.6,
        None,
        "Howard et al. 2017, Tables 4/6-8: 1.0 MobileNet-224; crop protocol not stated",
        "unstated",
    ),
]
