"""vizlib: the package behind the book *How convolutional networks see*.

One import in every chapter::

    import vizlib as vl
    net = vl.load("alexnet")                      # the reader's model set
    vl.summary(net.model)                         # layer by layer
    proj = vl.Deconvnet(net).project(x, "c5", 3)  # one activation back to pixels

``vl.`` holds the methods (and the machinery they share); each chapter's
presentation (figures, tables, claims, explorers) lives in its own module,
``from vizlib.chapters import ch05 as ch``. The package has four layers, each
importing only those below it: ``vizlib.core`` < ``vizlib.models`` <
``vizlib.methods`` < ``vizlib.chapters``.
"""

# core: the shared machinery
from .core.batches import PreparedImages, batches
from .core.data import (ImageSet, caltech101, demo_images, fashion_mnist, fashion_mnist_sample, fashion_mnist_test,
                        labelled_folder)
from .core.device import device
from .core.errors import (
    DatasetUnavailable,
    ImageError,
    InputTooSmall,
    LayerError,
    NoObjectRegion,
    NoPositiveActivation,
    UnsupportedLayer,
    VizlibError,
    WeightsUnavailable,
)
from .core.examples import example_images
from .core.hooks import Capture, preserved, trace
from .core.images import ImageFiles, check_image, load_image, to_display
from .core.layers import resolve_layer
from .core.measures import energy_inside, object_mask, transform_mask
from .core.net import Net
from .core.shapes import min_input_size, output_sizes
from .core.tables import Table

# models: the nets, the model sets, training
from .models.bundled import load_snapshots
from .models.model_sets import choose_model_set, describe_model_set, load
from .models.nets import alexnet, vgg16, zfnet
from .models.training import evaluate, filter_rms, train

# methods: one module per paper method
from .methods.architecture import summary
from .methods.receptive_field import empirical_receptive_field, receptive_field, receptive_fields, unit_box
from .methods.deconvnet import Deconvnet
from .methods.topk import top_activations, top_patches
from .methods.embedding import embed_patches, fill_grid, neighbourhood_preservation, patch_features
from .methods.occlusion import Occlusion
from .methods.correspondence import correspondence
from .methods.denet import DeNet
from .methods.sparsity import layer_sparsity
from .methods.filters import dead_filters, filter_spectrum
from .methods.maximisation import compare_regularisers, maximise
from .methods.inversion import invert
from .methods.dissection import Broden, bundled_concepts, dissect, untrained
from .methods.invariance import invariance_sweep, rotational_symmetry, typical_distance
from .methods.probe import LinearProbe, fit_softmax, layer_features, train_from_scratch

__all__ = [
    # core
    "Net", "resolve_layer", "output_sizes", "min_input_size",
    "load_image", "check_image", "to_display", "ImageFiles",
    "ImageSet", "fashion_mnist", "fashion_mnist_sample", "fashion_mnist_test", "demo_images",
    "labelled_folder", "caltech101",
    "PreparedImages", "batches", "example_images",
    "energy_inside", "object_mask", "transform_mask",
    "Capture", "preserved", "trace", "device", "Table",
    "VizlibError", "ImageError", "InputTooSmall", "LayerError", "UnsupportedLayer", "NoObjectRegion",
    "DatasetUnavailable", "WeightsUnavailable", "NoPositiveActivation",
    # models
    "load", "choose_model_set", "describe_model_set", "alexnet", "zfnet", "vgg16",
    "train", "evaluate", "filter_rms", "load_snapshots",
    # methods
    "summary",
    "receptive_field", "receptive_fields", "unit_box", "empirical_receptive_field",
    "Deconvnet", "top_activations", "top_patches",
    "patch_features", "embed_patches", "fill_grid", "neighbourhood_preservation",
    "Occlusion", "correspondence",
    "DeNet",
    "layer_sparsity", "filter_spectrum", "dead_filters",
    "maximise", "compare_regularisers", "invert", "dissect", "bundled_concepts", "Broden", "untrained",
    "invariance_sweep", "typical_distance", "rotational_symmetry",
    "LinearProbe", "fit_softmax", "layer_features", "train_from_scratch",
]

__version__ = "0.2.0"
