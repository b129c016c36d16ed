"""Small nets shared by the sparsity, filter, reconstruction and chapter 6 tests: untrained, fast."""

from __future__ import annotations

import torch
from torch import nn

from vizlib.core.data import FASHION_MNIST_CLASSES
from vizlib.core.layers import name_layers
from vizlib.core.net import Net
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from vizlib.models.nets import alexnet
from vizlib.models.training import Preprocess


def small_cnn() -> nn.Module:
    """Two conv + pool blocks, named c1, p1, c2, p2: enough for the streaming machinery, fast."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)).eval()
    model.vizlib_layers = name_layers(model)
    return model


def bundled_net(arch: str, seed: int = 0) -> Net:
    """A bundled-style net (untrained) with its Fashion-MNIST preprocessing."""
    builder = {"alexnet": alexnet_fmnist, "zfnet": zfnet_fmnist, "vgg16": vgg_fmnist}[arch]
    size = 64  # the three read 64 px composed images
    p = Preprocess(size, 0.286, 0.353)
    return Net(arch, "bundled", builder(seed=seed).eval(), list(FASHION_MNIST_CLASSES), p, (p.mean,), (p.std,),
               size, "untrained, for tests")


def rgb_net(size: int = 67) -> Net:
    """A torchvision-style net: 3 channels, resize + centre crop + ImageNet normalisation."""
    from torchvision import transforms as T

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    tf = T.Compose([T.Resize(size + 8), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
    return Net("alexnet", "random", alexnet(seed=0, num_classes=10).eval(), [f"class {i}" for i in range(10)], tf,
               mean, std, size, "untrained, for tests")
