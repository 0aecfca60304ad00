"""Regenerate cnn_jax/models/reference.json from the architecture reference file.

    python tools/extract_reference.py ARCHITECTURES_JSON

The architecture reference file is a JSON list of rows, one per published network variant
(`name`, `variant`, exact parameter count, MACs, the paper's and the Keras/torchvision
weights' accuracies). This maps each of our model names to the row it reproduces and keeps
the figures `model_info` and the tables report (parameters, MACs, published accuracy).
"""

import argparse
import json
import pathlib

# our name -> (reference "name", a substring of its "variant")
ROWS = {
    "lenet5": ("LeNet-5", "paper"),
    "alexnet": ("AlexNet", "original 2012"),
    "alexnet_owt": ("AlexNet", "torchvision"),
    "zfnet": ("ZFNet", ""),
    "vgg11": ("VGG11 (config A)", ""),
    "vgg11_lrn": ("VGG11-LRN (config A-LRN)", ""),
    "vgg13": ("VGG13 (config B)", ""),
    "vgg16_c": ("VGG16-C (config C, conv1x1 in blocks 3-5)", ""),
    "vgg16": ("VGG16 (config D)", ""),
    "vgg19": ("VGG19 (config E)", ""),
    "vgg11_bn": ("VGG11-BN", ""),
    "vgg13_bn": ("VGG13-BN", ""),
    "vgg16_bn": ("VGG16-BN", ""),
    "vgg19_bn": ("VGG19-BN", ""),
    "googlenet": ("GoogLeNet (Inception v1)", "paper"),
    "googlenet_tv": ("GoogLeNet (Inception v1)", "torchvision googlenet"),
    "inception_v3": ("Inception-v3", ""),
    "inception_resnet_v2": ("Inception-ResNet-v2", ""),
    "xception": ("Xception", ""),
    "resnet18": ("ResNet-18", ""),
    "resnet34": ("ResNet-34", ""),
    "resnet50": ("ResNet-50", "v1 (paper"),
    "resnet101": ("ResNet-101", "v1 (paper"),
    "resnet152": ("ResNet-152", "v1 (paper"),
    "resnet50_v1_5": ("ResNet-50", "v1.5"),
    "resnet101_v1_5": ("ResNet-101", "v1.5"),
    "resnet152_v1_5": ("ResNet-152", "v1.5"),
    "densenet121": ("DenseNet-121", ""),
    "densenet169": ("DenseNet-169", ""),
    "densenet201": ("DenseNet-201", ""),
    "densenet161": ("DenseNet-161", ""),
    "mobilenet_v1": ("MobileNet v1", ""),
}
KEEP = [
    "variant",
    "input_size",
    "num_classes",
    "params_exact",
    "macs",
    "paper_top1",
    "paper_top5",
    "paper_eval_protocol",
    "keras_top1",
    "keras_top5",
    "torchvision_top1",
    "torchvision_top5",
]


def main(path: str) -> None:
    rows = json.loads(pathlib.Path(path).read_text())
    out = {}
    for ours, (name, variant) in ROWS.items():
        match = [r for r in rows if r["name"] == name and variant in r["variant"]]
        assert len(match) == 1, (ours, len(match))
        out[ours] = {k: match[0].get(k) for k in KEEP}
    target = pathlib.Path(__file__).parents[1] / "cnn_jax" / "models" / "reference.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out)} models to {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate cnn_jax/models/reference.json.")
    parser.add_argument("architectures_json", help="the architecture reference file (a JSON list of rows)")
    main(parser.parse_args().architectures_json)
