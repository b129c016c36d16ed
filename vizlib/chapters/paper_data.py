"""Numbers printed in the papers, kept as data so chapters can set them beside
what vizlib computes. Nothing here is a result of this package."""

from __future__ import annotations

__all__ = ["YU_TABLE1_VGG16", "YU_TABLE2_ALEXNET", "ZEILER_FIG3_SIZES", "ZEILER_FIG3_FC6_INPUTS", "YU_TOP1_ERROR",
           "VASHISHTH_CALTECH101_ACCURACY"]

#: Yu et al. (2016), Table 1: receptive field (size, stride) per layer of VGG-16.
YU_TABLE1_VGG16: dict[str, tuple[int, int]] = {
    "c1_1": (3, 1), "c1_2": (5, 1), "p1": (6, 2),
    "c2_1": (10, 2), "c2_2": (14, 2), "p2": (16, 4),
    "c3_1": (24, 4), "c3_2": (32, 4), "c3_3": (40, 4), "p3": (44, 8),
    "c4_1": (60, 8), "c4_2": (76, 8), "c4_3": (92, 8), "p4": (100, 16),
    "c5_1": (132, 16), "c5_2": (164, 16), "c5_3": (196, 16), "p5": (212, 32),
}

#: Yu et al. (2016), Table 2: receptive field (size, stride) per layer of AlexNet.
YU_TABLE2_ALEXNET: dict[str, tuple[int, int]] = {
    "c1": (11, 4), "p1": (15, 8), "c2": (47, 8), "p2": (55, 16),
    "c3": (87, 16), "c4": (119, 16), "c5": (151, 16), "p5": (167, 32),
}

#: Zeiler & Fergus (2014), Fig. 3: side of each layer's maps for a 224 input.
ZEILER_FIG3_SIZES: dict[str, int] = {
    "c1": 110, "p1": 55, "c2": 26, "p2": 13, "c3": 13, "c4": 13, "c5": 13, "p5": 6,
}

#: Zeiler & Fergus (2014), Fig. 3 caption: inputs to layer 6 (6·6·256).
ZEILER_FIG3_FC6_INPUTS = 9216

#: Yu et al. (2016) §3.1: top-1 error, single centre crop, ILSVRC2012 validation.
YU_TOP1_ERROR = {"vgg16": 0.295, "alexnet": 0.426}

#: Vashishth §6.2: test accuracy of AlexNet and ZFNet trained on Caltech-101 with one recipe.
VASHISHTH_CALTECH101_ACCURACY: dict[str, float] = {"alexnet": 0.7406, "zfnet": 0.7469}
