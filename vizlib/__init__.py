"""vizlib: the package behind the book *How convolutional networks see*.

One import in every chapter::

    import vizlib as vl
    net = vl.load("alexnet")          # the reader's model set
    vl.summary(net.model)             # layer by layer
    vl.receptive_fields(net.model)    # size, stride, offset per layer
"""

from . import paper_data, plotting, widgets
from .architecture import InputTooSmall, Summary, compare_sizes, compare_summaries, formula_table, min_input_size, output_sizes, summary
from .deconvnet import Deconvnet, NoPositiveActivation, Projection, Recording, UnsupportedLayer, normalize_projection
from .device import device
from .hooks import Capture, capture, preserved
from .images import ImageError, ImageFiles, check_image, imagenette, load_image, to_display
from .model_sets import (
    MODEL_SETS,
    Net,
    WeightsUnavailable,
    bundled_available,
    choose_model_set,
    describe_model_set,
    imagenet_available,
    load,
)
from .models import (
    ARCHITECTURES,
    ZFNet,
    alexnet,
    alexnet_original,
    layer_module,
    layer_names,
    name_layers,
    resolve_layer,
    vgg16,
    zfnet,
)
from .plotting import fit_image, plot_receptive_field, plot_receptive_field_growth, plot_summary
from .receptive_field import (
    RField,
    compare_with_paper,
    empirical_receptive_field,
    receptive_field,
    receptive_field_table,
    receptive_fields,
    unit_box,
)
from .tables import Table
from .topk import TopActivations, TopKMiner, top_activations, top_patches
from .data import (
    DEMO_IMAGES,
    FASHION_MNIST_CLASSES,
    DatasetUnavailable,
    ImageSet,
    demo_image,
    demo_images,
    fashion_mnist,
    fashion_mnist_sample,
    fashion_mnist_test,
)
from .bundled_models import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from .training import (
    CheckpointError,
    Preprocess,
    TrainConfig,
    evaluate,
    filter_rms,
    renormalize_filters,
    train,
    train_bundled,
)
from .bundled import bundled_record, bundled_snapshots, load_bundled

__all__ = [
    "paper_data",
    "plotting",
    "widgets",
    "InputTooSmall",
    "Summary",
    "min_input_size",
    "output_sizes",
    "summary",
    "compare_sizes",
    "compare_summaries",
    "formula_table",
    "receptive_field_table",
    "alexnet_original",
    "fit_image",
    "plot_receptive_field",
    "plot_receptive_field_growth",
    "plot_summary",
    "RField",
    "compare_with_paper",
    "empirical_receptive_field",
    "receptive_field",
    "receptive_fields",
    "unit_box",
    "Table",
    "device",
    "Capture",
    "capture",
    "preserved",
    "MODEL_SETS",
    "Net",
    "WeightsUnavailable",
    "bundled_available",
    "choose_model_set",
    "describe_model_set",
    "imagenet_available",
    "load",
    "ARCHITECTURES",
    "ZFNet",
    "alexnet",
    "zfnet",
    "vgg16",
    "layer_module",
    "layer_names",
    "name_layers",
    "resolve_layer",
    "Deconvnet",
    "Recording",
    "Projection",
    "UnsupportedLayer",
    "NoPositiveActivation",
    "normalize_projection",
    "ImageError",
    "ImageFiles",
    "check_image",
    "imagenette",
    "load_image",
    "to_display",
    "TopActivations",
    "TopKMiner",
    "top_activations",
    "top_patches",
    "DEMO_IMAGES",
    "FASHION_MNIST_CLASSES",
    "DatasetUnavailable",
    "ImageSet",
    "demo_image",
    "demo_images",
    "fashion_mnist",
    "fashion_mnist_sample",
    "fashion_mnist_test",
    "alexnet_fmnist",
    "zfnet_fmnist",
    "vgg_fmnist",
    "CheckpointError",
    "Preprocess",
    "TrainConfig",
    "evaluate",
    "filter_rms",
    "renormalize_filters",
    "train",
    "train_bundled",
    "bundled_record",
    "bundled_snapshots",
    "load_bundled",
]

__version__ = "0.1.0"
