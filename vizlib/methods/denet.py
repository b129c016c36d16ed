"""DeNet (Vashishth, §7-8): a class vector sent back through the whole network to the pixels.

The deconvnet (:mod:`vizlib.deconvnet`) starts from a convolutional layer.
DeNet starts from the *output*: a one-hot vector naming a class (or any
weighting of the classes) is sent down

* through each dense layer: **subtract the bias, multiply by the transposed
  weight** (Vashishth: "the tensor is multiplied by the transpose of the
  weight matrix used during the forward pass after subtracting the bias");
* reshaped to the last pooled map (the input of the first dense layer);
* then through the convolutional part with the deconvnet (Zeiler & Fergus):
  unpooling with the switches of the image being explained, rectification,
  transposed filtering. This part is :meth:`vizlib.Recording.project_signal`.

Two choices the paper leaves open are arguments, with the paper's literal
reading as the default:

* ``top``: what the class vector stands for. ``"logits"`` (default): the
  output of the last dense layer, so the softmax plays no part (the paper puts
  the one-hot vector straight into the reversed dense layer).
  ``"probabilities"``: the softmax's output; the softmax is undone first,
  ``z = log(max(p, eps))`` centred to mean zero (the softmax forgets a
  constant, so the centred logits are the natural representative).
* ``rectify``: apply a ReLU where the forward pass had one between dense
  layers, as the deconvnet does. Default ``False``: the paper's dense rule is
  bias and transposed weight only.

With every dense bias zero, DeNet with ``rectify=True`` is exactly the
deconvnet's projection of the same vector from the output layer (the
deconvnet rectifies at each ReLU); on a network with no ReLU between its dense
layers the same holds with ``rectify=False``. The tests check both.

Besides DeNet this module holds the two measures of chapter 7 (and chapter 6):
:func:`object_energy_share` (how much of a visualisation's energy falls on the
object) and :func:`class_correlation` (how class-specific DeNet images are),
plus :func:`grid_share` for Vashishth's "block artifacts".

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    rec = vl.DeNet(net).record(image)
    p = rec.project(rec.top_classes(3))        # one DeNet image per class
    plt.imshow(p.display(0))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .deconvnet import Deconvnet, Projection, Recording, normalize_projection
from ..core.errors import UnsupportedLayer
from ..core.hooks import preserved
from ..core.images import _to_pil, _unwrap, _wanted_mode, check_image, first_conv, load_image, to_display
from ..core.layers import resolve_layer

from ..core.errors import NoDenseLayers

__all__ = [
    "DeNet",
    "DeNetRecording",
    "DeNetProjection",
    "NoDenseLayers",
    "TOPS",
    "object_energy_share",
    "object_region",
    "class_correlation",
    "class_correlations",
    "grid_share",
    "DeNetImage",
    "denet_images",
    "Explained",
    "explain_images",
    "top_classes_table",
    "denet_vs_deconvnet_table",
    "true_vs_wrong_table",
    "compare_nets_table",
    "denet_claims",
    "OPTIONS",
    "MAX_OBJECT_AREA",
    "option_variants",
    "options_table",
    "plot_options",
    "plot_denet_rows",
    "plot_top_classes",
    "plot_denet_vs_deconvnet",
    "plot_true_vs_wrong",
    "plot_nets_side_by_side",
    "denet_figure",
    "denet_explorer",
]

#: What the class vector at the top can stand for.
TOPS: tuple[str, ...] = ("logits", "probabilities")

#: Default floor for probabilities before the logarithm (one-hot vectors hold zeros).
PROBABILITY_FLOOR = 1e-6



# --------------------------------------------------------------------------- the network's dense top


@dataclass(frozen=True)
class _Chain:
    """What DeNet needs to know about the forward pass, for one input size."""

    dense: tuple[str, ...]  # module paths of the dense layers, bottom to top
    dense_labels: tuple[str, ...]  # their paper names (fc6 names fc6's ReLU: the Linear's label is taken from it)
    relu_below: tuple[bool, ...]  # relu_below[j]: a ReLU lies between dense[j-1] and dense[j]
    start: str  # module path of the last layer with feature maps (the input of the dense part)
    start_shape: tuple[int, int, int]
    top_conv: str  # module path of the last convolution's output (its ReLU when there is one)
    classes: int


def _describe(module: nn.Module) -> str:
    return type(module).__name__


_PASS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.Flatten)


def _trace(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...], int, tuple[int, ...], int]]:
    """The leaf-module calls of one forward pass: path, module, in/out shape (per image) and storage."""
    calls: list[tuple[str, nn.Module, tuple[int, ...], int, tuple[int, ...], int]] = []

    def hook_for(path: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            inp = inputs[0] if inputs else None
            if isinstance(inp, torch.Tensor) and isinstance(output, torch.Tensor):
                calls.append((path, module, tuple(inp.shape[1:]), inp.data_ptr(),
                              tuple(output.shape[1:]), output.data_ptr()))
            else:
                calls.append((path, module, (), -1, (), -2))

        return hook

    handles = []
    with preserved(model), torch.no_grad():
        try:
            for path, module in model.named_modules():
                if path and not list(module.children()):
                    handles.append(module.register_forward_hook(hook_for(path)))
            model(x)
        finally:
            for h in handles:
                h.remove()
    return calls


def _analyse(model: nn.Module, calls: list) -> _Chain:
    """Find the dense layers, what lies between them, and the pooled map below them."""
    lin = [i for i, c in enumerate(calls) if isinstance(c[1], nn.Linear)]
    if not lin:
        raise NoDenseLayers(
            "DeNet starts from the class scores of a dense output layer, and this network's forward pass "
            "calls no nn.Linear layer. Use vl.Deconvnet to project its convolutional layers instead"
        )
    paths = [calls[i][0] for i in lin]
    if len(set(paths)) != len(paths):
        raise UnsupportedLayer("a dense layer is called more than once in the forward pass; DeNet needs a chain")
    first, last = lin[0], lin[-1]

    def label(path: str) -> str:
        return resolve_layer(model, path)[0]

    relu_below = [False]
    for j in range(1, len(lin)):
        between = calls[lin[j - 1] + 1 : lin[j]]
        relu = False
        for path, module, *_ in between:
            if isinstance(module, nn.ReLU):
                relu = True
            elif not isinstance(module, _PASS):
                raise UnsupportedLayer(
                    f"DeNet goes back through the dense layers with their biases and transposed weights, and "
                    f"layer {label(path)} ({_describe(module)}) between {label(paths[j - 1])} and "
                    f"{label(paths[j])} is neither a ReLU nor a dropout/identity/flatten it could pass. "
                    "Use a network whose dense part is built from these layers"
                )
        relu_below.append(relu)
    for k in range(first + 1, last + 1):  # the dense part must be a chain
        if calls[k][3] != calls[k - 1][5]:
            raise UnsupportedLayer(
                f"layer {label(calls[k][0])} does not take the output of {label(calls[k - 1][0])} as its input "
                "(a branch or a tensor operation outside any module lies between them); DeNet needs a chain"
            )

    k = first - 1
    while k >= 0 and len(calls[k][4]) != 3:
        path, module = calls[k][0], calls[k][1]
        if not isinstance(module, _PASS):
            raise UnsupportedLayer(
                f"between the feature maps and the first dense layer {label(paths[0])} lies layer {label(path)} "
                f"({_describe(module)}), which DeNet cannot go back through (only dropout, identity and flatten)"
            )
        k -= 1
    if k < 0:
        raise UnsupportedLayer(
            f"no layer with feature maps lies below the first dense layer {label(paths[0])}: DeNet sends the class "
            "vector down to a convolutional network's last pooled map; this network has none"
        )
    start, start_shape = calls[k][0], calls[k][4]
    in_features = calls[first][1].in_features
    if int(np.prod(start_shape)) != in_features:
        raise UnsupportedLayer(
            f"the first dense layer {label(paths[0])} takes {in_features} inputs, but the feature maps below it "
            f"({label(start)}) hold {int(np.prod(start_shape))} values"
        )
    for j in range(k + 1, first + 1):
        if calls[j][3] != calls[j - 1][5]:
            raise UnsupportedLayer(
                f"layer {label(calls[j][0])} does not take the output of {label(calls[j - 1][0])} as its input; "
                "DeNet needs a chain from the pooled map to the dense layers"
            )
    convs = [i for i in range(k + 1) if isinstance(calls[i][1], nn.Conv2d)]
    if convs:
        c = convs[-1]
        top_conv = calls[c + 1][0] if c + 1 <= k and isinstance(calls[c + 1][1], nn.ReLU) else calls[c][0]
    else:
        top_conv = start
    names = []
    for i in lin:
        own = label(calls[i][0])
        if own == calls[i][0] and i + 1 < len(calls) and isinstance(calls[i + 1][1], nn.ReLU):
            after = label(calls[i + 1][0])  # fc6 and fc7 point at their ReLU
            own = after if after != calls[i + 1][0] else own
        names.append(own)
    return _Chain(tuple(paths), tuple(names), tuple(relu_below), start,
                  tuple(start_shape), top_conv, int(calls[last][1].out_features))  # type: ignore[arg-type]


def _prepare(image: Any, model: nn.Module, transform: Any, *, batch: bool = False, check: bool = True) -> torch.Tensor:
    """An image as the network's ``(N, C, H, W)`` input.

    Like :func:`vizlib.load_image`, except that the size is checked after the
    transform, not before: the bundled nets' transform enlarges Fashion-MNIST's
    28×28 images to 64×64, which ``load_image`` refuses as too small.
    """
    if isinstance(image, torch.Tensor) or transform is None:
        return check_image(image if isinstance(image, torch.Tensor) else load_image(image, model, convert=True),
                           model, batch=batch)
    pil = _to_pil(image)
    conv = first_conv(model)
    if pil.mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
    if conv is not None and pil.mode != _wanted_mode(conv[1].in_channels):
        pil = pil.convert(_wanted_mode(conv[1].in_channels))
    return check_image(transform(pil), model if check else None, batch=batch)


def _net_transform(net: Any) -> Any:
    model, transform = _unwrap(net)
    assert model is not None
    return model, transform


# --------------------------------------------------------------------------- the result


@dataclass
class DeNetProjection:
    """DeNet images: one per class vector.

    Attributes:
        pixels: ``(B, C, H, W)`` in the network's input space (full size).
        image_index: ``(B,)`` which recorded image each belongs to.
        target: the class of each one-hot vector, ``None`` for a weighting.
        vector: ``(B, K)`` the class vectors as given at the top.
        signal: ``(B, C', h, w)`` the vector after the dense layers: the
            signal at the last pooled map that the deconvnet sends down.
        layer: the layer the deconvnet part starts from.
        top: ``"logits"`` or ``"probabilities"``.
        rectify: whether ReLUs between dense layers were applied.
        empty: ``(B,)`` True where nothing positive reached the pooled map
            (the image is zero).
    """

    pixels: torch.Tensor
    image_index: torch.Tensor
    target: list[int | None]
    vector: torch.Tensor
    signal: torch.Tensor
    layer: str
    top: str
    rectify: bool
    empty: torch.Tensor

    def __len__(self) -> int:
        return len(self.pixels)

    def __repr__(self) -> str:
        shape = "×".join(str(s) for s in self.pixels.shape[1:])
        return (f"DeNetProjection({len(self)} × {shape}, targets={self.target}, top={self.top!r}, "
                f"rectify={self.rectify}, {int(self.empty.sum())} empty)")

    def display(self, i: int | None = None) -> np.ndarray:
        """For ``plt.imshow``: zero is mid-grey, each image scaled on its own (see :func:`normalize_projection`)."""
        return normalize_projection(self.pixels if i is None else self.pixels[i])


# --------------------------------------------------------------------------- DeNet


def _floatlike(x: Any) -> bool:
    return isinstance(x, float) or (isinstance(x, torch.Tensor) and x.is_floating_point()) or (
        isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating))


class DeNetRecording:
    """One forward pass of some images, kept for DeNet (and deconvnet) projections.

    Made by :meth:`DeNet.record`.

    Attributes:
        logits: ``(N, K)`` the network's output for each image.
        recording: the deconvnet :class:`~vizlib.Recording` underneath (it
            also holds the top convolutional layer, for
            :meth:`strongest_map`, and any ``also`` layers).
        images: number of images recorded.
    """

    def __init__(self, denet: "DeNet", recording: Recording, chain: _Chain, logits: torch.Tensor) -> None:
        self._dn = denet
        self._chain = chain
        self.recording = recording
        self.logits = logits
        self.images = int(logits.shape[0])

    @property
    def probabilities(self) -> torch.Tensor:
        """``(N, K)`` softmax of the logits."""
        return self.logits.softmax(-1)

    @property
    def classes(self) -> int:
        return self._chain.classes

    def _image(self, image: int) -> int:
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)):
            raise TypeError(f"image must be an int (which recorded image), not {type(image).__name__}")
        if not 0 <= int(image) < self.images:
            raise ValueError(f"image {image} was not recorded; this recording holds {self.images} image(s) "
                             f"(0..{self.images - 1})")
        return int(image)

    def predicted(self, image: int = 0) -> int:
        """The class the network gives the image (largest logit)."""
        return int(self.logits[self._image(image)].argmax())

    def top_classes(self, k: int = 3, image: int = 0) -> list[int]:
        """The ``k`` most probable classes of an image, most probable first."""
        if not 1 <= k <= self.classes:
            raise ValueError(f"k must be between 1 and {self.classes} (the number of classes), not {k}")
        return self.logits[self._image(image)].topk(k).indices.tolist()

    def class_vectors(self, target: Any = None, weights: Any = None, *, image: int = 0) -> tuple[torch.Tensor, list[int | None]]:
        """The class vectors DeNet starts from: ``(B, K)`` and each one's class (``None`` for a weighting).

        See :meth:`project` for ``target`` and ``weights``.
        """
        k = self.classes
        if target is not None and weights is not None:
            raise ValueError("give either target (class indices) or weights (a class weighting), not both")
        if weights is not None:
            w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
            if not w.is_floating_point():
                w = w.to(torch.float32)
            given = tuple(w.shape)
            if w.ndim == 1:
                w = w.unsqueeze(0)
            if w.ndim != 2 or w.shape[1] != k:
                raise ValueError(
                    f"the class weighting has shape {given}, but the output layer "
                    f"{self._chain.dense_labels[-1]} has {k} classes. Give one weight per class: "
                    f"shape ({k},), or (B, {k}) for B DeNet images"
                )
            if not torch.isfinite(w).all():
                raise ValueError("the class weighting holds NaN or infinite values")
            return w.detach().cpu().to(torch.float32), [None] * len(w)
        if target is None:
            target = self.predicted(image)
        if isinstance(target, (str, bytes)) or not isinstance(target, Iterable) or (
                isinstance(target, torch.Tensor) and target.ndim == 0):
            items = [target]
        else:
            items = list(target)
        if not items:
            raise ValueError("target is empty: name at least one class")
        idx: list[int] = []
        for t in items:
            if isinstance(t, torch.Tensor):
                t = t.item()
            if isinstance(t, str):
                idx.append(self._dn._class_index(t))
                continue
            if isinstance(t, bool) or _floatlike(t) or not isinstance(t, (int, np.integer)):
                raise TypeError(
                    f"a class must be given by its index (an int) or its name, not {t!r}; "
                    "for a weighting of classes pass weights=..."
                )
            if not 0 <= int(t) < k:
                raise ValueError(
                    f"class {int(t)} is out of range: the output layer {self._chain.dense_labels[-1]} "
                    f"has {k} classes (0..{k - 1})"
                )
            idx.append(int(t))
        v = torch.zeros(len(idx), k)
        v[torch.arange(len(idx)), torch.tensor(idx)] = 1.0
        return v, list(idx)

    def project(
        self,
        target: int | str | Sequence[int | str] | None = None,
        *,
        weights: Any = None,
        image: int = 0,
        top: str = "logits",
        rectify: bool = False,
        eps: float = PROBABILITY_FLOOR,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> DeNetProjection:
        """DeNet images of one recorded image, one per class vector.

        Args:
            target: a class (index or name) or several: one-hot vectors, one
                DeNet image each. Default: the class the network predicts.
            weights: instead of ``target``, any weighting of the classes:
                ``(K,)`` or ``(B, K)``.
            image: which recorded image's switches to use.
            top: ``"logits"`` (the paper's reading: the vector is the last
                dense layer's output) or ``"probabilities"`` (the vector is a
                softmax output; undone by a centred logarithm first).
            rectify: ReLU where the forward pass has one between dense layers.
            eps: floor for probabilities before the logarithm (``top="probabilities"``).
            batch_size, progress: passed to the deconvnet.

        Returns:
            A :class:`DeNetProjection`.

        Raises:
            ValueError: a class out of range, a weighting of the wrong length,
                both ``target`` and ``weights``, an unknown ``top``, negative
                probabilities, an image not recorded.
            TypeError: a class given as neither an int nor a name.

        Example:
            >>> from vizlib.models import alexnet_fmnist
            >>> rec = DeNet(alexnet_fmnist(seed=0)).record(torch.randn(1, 64, 64))
            >>> p = rec.project([0, 3])
            >>> tuple(p.pixels.shape), p.target
            ((2, 1, 64, 64), [0, 3])
        """
        image = self._image(image)
        if top not in TOPS:
            raise ValueError(f"top must be one of {', '.join(map(repr, TOPS))}, not {top!r}")
        if not isinstance(rectify, (bool, np.bool_)):
            raise TypeError(f"rectify must be True or False, not {rectify!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, not {eps}")
        vector, targets = self.class_vectors(target, weights, image=image)
        signal = self._dn._dense_down(self._chain, vector, top=top, rectify=bool(rectify), eps=eps)
        proj = self.recording.project_signal(self._chain.start, signal, image=image, batch_size=batch_size,
                                             progress=progress)
        return DeNetProjection(
            pixels=proj.pixels, image_index=proj.image_index, target=targets, vector=vector,
            signal=signal.detach().cpu(), layer=proj.layer, top=top, rectify=bool(rectify), empty=proj.empty,
        )

    def strongest_map(self, layer: str | nn.Module | None = None, image: int = 0) -> Projection:
        """The deconvnet projection of the strongest feature map of a layer (Zeiler Fig. 7c, Vashishth Fig. 13).

        The strongest map is the one holding the layer's largest activation;
        it is projected whole (all its activations, the rest of the layer zero).

        Args:
            layer: default the top convolutional layer (``c5`` in AlexNet and ZFNet).
            image: which recorded image.

        Returns:
            A full-size :class:`~vizlib.Projection`; ``channel[0]`` is the map.
        """
        image = self._image(image)
        layer = self._chain.top_conv if layer is None else layer
        act = self.recording.activation(layer)[image]
        if act.ndim != 3:
            raise ValueError(f"layer {resolve_layer(self._dn.model, layer)[0]} has no feature maps")
        channel = int(act.flatten(1).amax(1).argmax())
        return self.recording.project(layer, channel, whole_map=True, image=image)


class DeNet:
    """Vashishth's DeNet: class vectors sent back through the dense layers and the deconvnet to the pixels.

    Args:
        model: a CNN with dense layers on top (AlexNet, ZFNet, VGG-16 and
            alike), or a :class:`~vizlib.Net` (then images may be files or
            arrays: its transform prepares them, and classes may be named).
        device: where to compute (default: where the model lives).

    Raises:
        NoDenseLayers: the model has no ``nn.Linear`` layer.

    Example:
        >>> from vizlib.models import zfnet_fmnist
        >>> dn = DeNet(zfnet_fmnist(seed=0))
        >>> p = dn.project(torch.randn(1, 64, 64), 7)
        >>> p.pixels.shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, model: Any, *, device: torch.device | str | None = None) -> None:
        module, transform = _unwrap(model)
        if module is None:
            raise TypeError("DeNet needs a model (an nn.Module or a vizlib Net)")
        if not any(isinstance(m, nn.Linear) for m in module.modules()):
            raise NoDenseLayers(
                f"DeNet starts from the class scores of a dense output layer, and this {type(module).__name__} has "
                "no nn.Linear layer. Use vl.Deconvnet to project its convolutional layers instead"
            )
        self.model: nn.Module = module
        self.transform = transform
        self.categories: list[str] | None = list(model.categories) if hasattr(model, "categories") else None
        self.deconvnet = Deconvnet(model, device=device)
        self.device = self.deconvnet.device
        self._chains: dict[tuple[int, ...], _Chain] = {}

    def __repr__(self) -> str:
        return f"DeNet({type(self.model).__name__}, device={self.device})"

    def _label(self, path: str) -> str:
        return resolve_layer(self.model, path)[0]

    def _class_index(self, name: str) -> int:
        if self.categories is None:
            raise ValueError(
                f"classes can be named ({name!r}) only when DeNet is made from a vizlib Net that carries its "
                "categories; give the class index instead"
            )
        if name in self.categories:
            return self.categories.index(name)
        import difflib

        near = difflib.get_close_matches(name, self.categories, n=3)
        raise ValueError(f"unknown class {name!r}" + (f"; did you mean {', '.join(map(repr, near))}?" if near else ""))

    def chain(self, input_shape: Sequence[int]) -> _Chain:
        """The dense layers and the pooled map below them, for inputs of shape ``(C, H, W)`` (cached)."""
        key = tuple(int(s) for s in input_shape)
        if key not in self._chains:
            p = next(self.model.parameters(), None)
            x = torch.zeros(1, *key, dtype=p.dtype if p is not None else torch.float32,
                            device=p.device if p is not None else None)
            self._chains[key] = _analyse(self.model, _trace(self.model, x))
        return self._chains[key]

    def dense_layers(self, input_shape: Sequence[int]) -> list[str]:
        """Labels of the dense layers DeNet goes back through, bottom to top."""
        return list(self.chain(input_shape).dense_labels)

    def top_conv_layer(self, input_shape: Sequence[int]) -> str:
        """Label of the top convolutional layer (whose strongest map :meth:`DeNetRecording.strongest_map` projects)."""
        return self._label(self.chain(input_shape).top_conv)

    def describe(self, input_shape: Sequence[int]) -> str:
        """The way down for inputs of shape ``(C, H, W)``, in words."""
        c = self.chain(input_shape)
        dense = " → ".join(reversed(c.dense_labels))
        shape = "×".join(map(str, c.start_shape))
        return (f"{dense} (subtract the bias, multiply by the transposed weight), reshaped to the {shape} maps of "
                f"{self._label(c.start)}, then the deconvnet down to the pixels")

    def prepare(self, image: Any, *, batch: bool = False) -> torch.Tensor:
        """An image as the network's ``(N, C, H, W)`` input (files, PIL and arrays need a Net's transform)."""
        return _prepare(image, self.model, self.transform, batch=batch)

    def record(
        self, image: Any, *, batch: bool = False, also: Iterable[str | nn.Module] = ()
    ) -> DeNetRecording:
        """One forward pass: the switches DeNet needs, the logits, the top conv layer.

        Args:
            image: a prepared tensor ``(C, H, W)`` (``(N, C, H, W)`` with
                ``batch=True``), or a file / PIL image / array with a Net.
            batch: accept several images.
            also: more layers to keep for deconvnet projections from the same pass.

        Returns:
            A :class:`DeNetRecording`.

        Raises:
            ImageError, InputTooSmall: the image does not fit the network.
            UnsupportedLayer: a layer DeNet cannot go back through.
        """
        x = self.prepare(image, batch=batch)
        chain = self.chain(tuple(x.shape[1:]))
        layers = [chain.start, chain.top_conv, chain.dense[-1], *also]
        rec = self.deconvnet.record(x, layers, batch=True)
        logits = rec.activation(chain.dense[-1]).detach().float().cpu()
        return DeNetRecording(self, rec, chain, logits)

    def project(
        self,
        image: Any,
        target: int | str | Sequence[int | str] | None = None,
        *,
        weights: Any = None,
        top: str = "logits",
        rectify: bool = False,
        eps: float = PROBABILITY_FLOOR,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> DeNetProjection:
        """DeNet images of one image: record it, then :meth:`DeNetRecording.project`.

        ``project(img)``: the predicted class; ``project(img, [3, 5])``: two
        classes; ``project(img, weights=w)``: a weighting of the classes.
        """
        return self.record(image).project(target, weights=weights, top=top, rectify=rectify, eps=eps,
                                          batch_size=batch_size, progress=progress)

    @torch.no_grad()
    def _dense_down(self, chain: _Chain, vector: torch.Tensor, *, top: str, rectify: bool, eps: float) -> torch.Tensor:
        """Class vectors ``(B, K)`` down through the dense layers to the pooled map ``(B, C, h, w)``."""
        w0 = self.model.get_submodule(chain.dense[-1]).weight
        g = vector.to(w0.device, w0.dtype)
        if top == "probabilities":
            if (g < 0).any():
                raise ValueError("probabilities cannot be negative; use top='logits' for a signed weighting")
            if not (g > 0).any(1).all():
                raise ValueError("a probability vector must have a positive entry")
            g = torch.log(g.clamp_min(eps))
            g = g - g.mean(1, keepdim=True)
        for j in reversed(range(len(chain.dense))):
            lin = self.model.get_submodule(chain.dense[j])
            assert isinstance(lin, nn.Linear)
            if lin.bias is not None:
                g = g - lin.bias
            g = g @ lin.weight
            if j > 0 and rectify and chain.relu_below[j]:
                g = F.relu(g)
        return g.reshape(len(g), *chain.start_shape)


# --------------------------------------------------------------------------- measures


def _energy(v: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Sum over channels of squares: ``(..., C, H, W)`` -> ``(..., H, W)``; ``(H, W)`` passes squared."""
    t = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).detach().to("cpu", torch.float64)
    if t.ndim == 2:
        return t**2
    return (t**2).sum(-3)


def object_energy_share(visualisation: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> float | np.ndarray:
    """The share of a visualisation's energy that falls inside the object region.

    Energy is the sum of squares of the visualisation, summed over channels,
    per pixel; the share is the energy inside ``mask`` over the total. A
    visualisation spread evenly over the image scores the mask's area share
    (``mask.mean()``): compare with that.

    Args:
        visualisation: ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)``.
        mask: ``(H, W)`` boolean, True on the object (see :func:`object_region`).

    Returns:
        A float in [0, 1] (NaN for a visualisation that is zero everywhere),
        or a ``(B,)`` array for a batch.

    Raises:
        ValueError: the mask's size differs from the visualisation's, or the
            mask is empty.

    Example:
        >>> v = torch.zeros(1, 2, 2); v[0, 0, 0] = 3; v[0, 1, 1] = 4
        >>> object_energy_share(v, torch.tensor([[True, False], [False, False]]))
        0.36
    """
    e = _energy(visualisation)
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).detach().cpu()
    if m.ndim != 2:
        raise ValueError(f"the mask must be (H, W); it has shape {tuple(m.shape)}")
    if tuple(m.shape) != tuple(e.shape[-2:]):
        raise ValueError(
            f"the mask is {tuple(m.shape)} but the visualisation is {tuple(e.shape[-2:])} pixels: make the mask "
            "in the network's input space (vl.object_region(net, image, ...))"
        )
    m = m.bool()
    if not m.any():
        raise ValueError("the mask is empty: no pixel is marked as the object")
    total = e.sum((-2, -1))
    inside = (e * m).sum((-2, -1))
    share = torch.where(total > 0, inside / total.clamp_min(1e-300), torch.full_like(total, math.nan))
    return float(share) if share.ndim == 0 else share.numpy()


def class_correlation(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Pearson correlation between two visualisations of the same image (all pixels and channels).

    For DeNet images of two classes, near 1 means the two classes light up
    the same pixels the same way (not class-specific); near 0 or below,
    class-specific.

    Returns:
        A float in [-1, 1]; NaN when either image is constant (no variance).

    Raises:
        ValueError: the two have different shapes.

    Example:
        >>> class_correlation(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.5]))  # doctest: +ELLIPSIS
        0.99...
    """
    x = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach().to("cpu", torch.float64)
    y = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).detach().to("cpu", torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"the two visualisations differ in shape: {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.flatten() - x.mean(), y.flatten() - y.mean()
    den = float(x.norm() * y.norm())
    return float((x @ y) / den) if den > 0 else math.nan


def class_correlations(pixels: torch.Tensor | np.ndarray) -> np.ndarray:
    """All pairwise :func:`class_correlation` of ``B`` visualisations ``(B, ...)``: a ``(B, B)`` array."""
    p = torch.as_tensor(np.asarray(pixels) if not isinstance(pixels, torch.Tensor) else pixels)
    n = len(p)
    out = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = class_correlation(p[i], p[j])
    return out


def grid_share(visualisation: torch.Tensor | np.ndarray, period: int) -> float:
    """The share of a visualisation's variance that is a pattern repeating every ``period`` pixels.

    Vashishth sees "block artifacts" in AlexNet's DeNet images: a pattern
    that repeats with the first layer's stride (4 pixels), where each
    transposed filter is laid down. A pattern that repeats exactly with
    period ``p`` in both directions has all its power on the frequencies
    that are multiples of ``size / p`` in both directions (``p² - 1`` of
    them besides the mean). This returns the share of the power spectrum
    (each channel's mean removed, summed over channels) on those
    frequencies: equivalently, how much of the image's variance its average
    ``p × p`` tile, repeated, explains. White noise puts
    ``(p² - 1) / (H·W - 1)`` there (under 0.004 for ``p = 4`` on 64×64); a
    pure grid puts 1.

    Args:
        visualisation: ``(H, W)`` or ``(C, H, W)``.
        period: in pixels, at least 2, dividing both image sides.

    Returns:
        A share in [0, 1]; NaN for a constant image.

    Raises:
        ValueError: a period below 2, or one that does not divide the image sides.

    Example:
        >>> grid = torch.zeros(16, 16); grid[::4] = 1                   # a line every 4 rows
        >>> grid_share(grid, 4), round(grid_share(grid, 2), 3)         # all of it repeats every 4 rows
        (1.0, 0.333)
    """
    t = torch.as_tensor(np.asarray(visualisation) if not isinstance(visualisation, torch.Tensor) else visualisation)
    t = t.detach().to("cpu", torch.float64)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    h, w = t.shape[-2:]
    if period < 2 or h % period or w % period:
        raise ValueError(f"the period must be at least 2 and divide the image sides ({h}×{w}); got {period}")
    t = t - t.mean((-2, -1), keepdim=True)
    power = torch.fft.fft2(t).abs().pow(2).sum(0)
    total = float(power.sum())
    if total <= 1e-24 * max(1.0, float(t.abs().max()) ** 2 * h * w):
        return math.nan
    fy = torch.arange(h) % (h // period) == 0
    fx = torch.arange(w) % (w // period) == 0
    lattice = fy.view(-1, 1) & fx.view(1, -1)
    return min(1.0, float(power[lattice].sum()) / total)  # the mean (0, 0) is zero after centring


# --------------------------------------------------------------------------- object regions


def object_region(
    net: Any, image: Any, box: tuple[int, int, int, int] | None = None, *, threshold: float = 0.1
) -> torch.Tensor:
    """The object region of an image, in the network's input space: ``(H, W)`` boolean.

    Two ways to mark the object, both given in the image's own pixels and
    sent through the network's own preprocessing (so resizing and cropping
    apply to the region exactly as to the image):

    * ``box``: a rectangle ``(top, left, bottom, right)`` (photos, e.g.
      ``vizlib.DEMO_OBJECT_BOXES``, the boxes chapter 6 measures in too);
    * no box: the pixels brighter than ``threshold`` (0-1 scale) after the
      normalisation is undone: the garment of a Fashion-MNIST image, which
      lies on a black background.

    Args:
        net: a :class:`~vizlib.Net` (its transform, mean and std).
        image: the image as given to the transform (``H×W`` / ``H×W×3`` uint8 array or PIL image).
        box: the object's box, or ``None``.
        threshold: brightness above which a pixel counts as the object (no box).

    Raises:
        ValueError: the box is empty or outside the image; nothing is brighter than the threshold.

    Example:
        >>> net = vizlib.load("alexnet", "random")                           # doctest: +SKIP
        >>> d, img = vizlib.demo_image("coffee")                             # doctest: +SKIP
        >>> object_region(net, img, vizlib.DEMO_OBJECT_BOXES["coffee"]).shape  # doctest: +SKIP
        torch.Size([224, 224])
    """
    from PIL import Image

    mean = torch.tensor(net.mean, dtype=torch.float64).view(-1, 1, 1)
    std = torch.tensor(net.std, dtype=torch.float64).view(-1, 1, 1)
    if box is None:
        x = _prepare(image, *_net_transform(net), check=False)[0].to(torch.float64) * std + mean
        mask = x.amax(0) > threshold
        if not mask.any():
            raise ValueError(f"no pixel of the image is brighter than threshold={threshold}: give a box, or a lower threshold")
        return mask
    arr = np.asarray(image) if not isinstance(image, Image.Image) else np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    top, left, bottom, right = (int(v) for v in box)
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if bottom <= top or right <= left:
        raise ValueError(f"the box {tuple(box)} is empty or outside the {h}×{w} image; give (top, left, bottom, right)")
    m = np.zeros((h, w), np.uint8)
    m[top:bottom, left:right] = 255
    x = _prepare(Image.fromarray(m), *_net_transform(net), check=False)[0].to(torch.float64) * std + mean
    return x.mean(0) > 0.5


@dataclass
class DeNetImage:
    """An image for the chapter, with its true class and its object region.

    Attributes:
        name: a short label for figures.
        image: the raw image (``H×W`` or ``H×W×3`` uint8) the net's transform takes.
        label: the true class (index into ``net.categories``).
        mask: ``(H, W)`` boolean object region in the network's input space.
        input: ``(C, H, W)`` the prepared input.
    """

    name: str
    image: np.ndarray
    label: int
    mask: torch.Tensor
    input: torch.Tensor = field(repr=False)


def denet_images(net: Any, n: int = 6) -> list[DeNetImage]:
    """Images to explain with a network, with their true class and object region.

    One-channel nets (the bundled set) get Fashion-MNIST test images from the
    committed sample, one of each class in turn, the garment as the object;
    three-channel nets (ImageNet, random) get the demo photos
    (:func:`vizlib.demo_images`), with the boxes chapter 6 measures in
    (``vizlib.DEMO_OBJECT_BOXES``) as the object.

    Args:
        net: a :class:`~vizlib.Net`.
        n: how many (at most 6 photos; at most 1,500 Fashion-MNIST images).
    """
    from .compare import DEMO_OBJECT_BOXES
    from ..core.data import demo_images, fashion_mnist_sample

    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    out = []
    if len(net.mean) == 1:
        s = fashion_mnist_sample()
        k = len(s.classes)
        picked = [int(np.flatnonzero(s.labels == i % k)[i // k]) for i in range(n)]  # one of each class in turn
        for i in picked:
            img = s.images[i]
            out.append(DeNetImage(f"{s.classes[s.labels[i]]} #{s.indices[i] if s.indices is not None else i}",
                               img, int(s.labels[i]), object_region(net, img), _prepare(img, *_net_transform(net))[0]))
        return out
    for d, img in demo_images()[:n]:
        out.append(DeNetImage(d.name, img, d.imagenet_index, object_region(net, img, DEMO_OBJECT_BOXES[d.name]),
                           _prepare(img, *_net_transform(net))[0]))
    return out


# --------------------------------------------------------------------------- one image, every view


@dataclass
class Explained:
    """DeNet and deconvnet views of one image, from one forward pass (see :func:`explain_images`).

    Attributes:
        example: the image, its true class and object region.
        top: the ``k`` most probable classes, most probable first.
        probabilities: ``(K,)`` the network's softmax output.
        denet_top: ``(k, C, H, W)`` DeNet images of the ``top`` classes.
        wrong: the most probable class other than the true one.
        denet_true, denet_wrong: ``(C, H, W)`` DeNet images of the true and that wrong class.
        deconv: ``(C, H, W)`` the deconvnet projection of the strongest map of the top conv layer.
        deconv_layer, deconv_map: that layer and map.
        period: the first convolution's stride (for :func:`grid_share`).
    """

    example: DeNetImage
    top: list[int]
    probabilities: np.ndarray
    denet_top: torch.Tensor
    wrong: int
    denet_true: torch.Tensor
    denet_wrong: torch.Tensor
    deconv: torch.Tensor
    deconv_layer: str
    deconv_map: int
    period: int

    @property
    def area(self) -> float:
        """The object's share of the image: what an evenly spread visualisation puts on it."""
        return float(self.example.mask.float().mean())

    @property
    def measurable(self) -> bool:
        """Whether enough background is left to tell visualisations apart by their share on the object."""
        return self.area < MAX_OBJECT_AREA

    def on_object(self, visualisation: torch.Tensor) -> float:
        """:func:`object_energy_share` of a visualisation of this image."""
        return float(object_energy_share(visualisation, self.example.mask))


#: Images whose object covers at least this share of the input leave too little background for the
#: energy share to tell visualisations apart: comparisons leave them out.
MAX_OBJECT_AREA = 0.95


def _first_stride(model: nn.Module) -> int:
    conv = first_conv(model)
    return int(_pair_first(conv[1].stride)) if conv is not None else 1


def _pair_first(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def explain_images(
    net: Any,
    examples: Sequence[DeNetImage],
    k: int = 3,
    *,
    top: str = "logits",
    rectify: bool = False,
    denet: DeNet | None = None,
    progress: bool | None = None,
) -> list[Explained]:
    """For each image: DeNet of its top classes, of its true class and of a wrong class, and the deconvnet view.

    One forward pass per image; the DeNet images go down as one batch.

    Args:
        net: a :class:`~vizlib.Net`.
        examples: images from :func:`denet_images`.
        k: how many of the most probable classes.
        top, rectify: DeNet's options (see :meth:`DeNetRecording.project`).
        denet: a :class:`DeNet` of ``net`` to reuse.
        progress: a progress bar over the images (default: more than 4 images).

    Returns:
        One :class:`Explained` per image.
    """
    from tqdm.auto import tqdm

    dn = denet or DeNet(net)
    period = _first_stride(dn.model)
    out = []
    show = len(examples) > 4 if progress is None else progress
    for ex in tqdm(examples, desc="DeNet", unit="image", disable=not show):
        rec = dn.record(ex.input)
        probs = rec.probabilities[0]
        tops = rec.top_classes(k)
        order = probs.argsort(descending=True).tolist()
        wrong = next(c for c in order if c != ex.label)
        p = rec.project([*tops, ex.label, wrong], top=top, rectify=rectify)
        d = rec.strongest_map()
        out.append(Explained(ex, tops, probs.numpy(), p.pixels[:k].cpu(), wrong, p.pixels[k].cpu(),
                             p.pixels[k + 1].cpu(), d.pixels[0].cpu(), d.layer, int(d.channel[0]), period))
    return out


def _p(p: float) -> str:
    """A probability for a title: two decimals, or two significant digits when small."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.1g}"


def _name(net: Any, c: int) -> str:
    cats = getattr(net, "categories", None)
    return str(cats[c]) if cats else str(c)


def top_classes_table(net: Any, results: Sequence[Explained]) -> Any:
    """Per image: the top classes with their probability, each DeNet image's share on the object, and how alike they are.

    ``r(1,2)`` is :func:`class_correlation` between the DeNet images of the
    two most probable classes (near 1: the same picture whatever the class).
    """
    from ..core.tables import Table

    k = len(results[0].top) if results else 0
    rows = []
    for r in results:
        corr = class_correlations(r.denet_top)
        rows.append([r.example.name, _name(net, r.example.label),
                     ", ".join(f"{_name(net, c)} ({_p(r.probabilities[c])})" for c in r.top),
                     r.area, " / ".join(f"{r.on_object(v):.2f}" for v in r.denet_top)]
                    + [float(corr[0, j]) for j in range(1, k)])
    return Table(["image", "true class", f"top {k} (probability)", "object area", "DeNet on object, each class"]
                 + [f"r(1,{j + 1})" for j in range(1, k)], rows)


def denet_vs_deconvnet_table(results: Sequence[Explained]) -> Any:
    """Per image: share of the energy on the object for DeNet (most probable class) and the deconvnet view.

    "DeNet higher" is left blank where the object fills the image (see :data:`MAX_OBJECT_AREA`).
    """
    from ..core.tables import Table

    rows = []
    for r in results:
        a, b = r.on_object(r.denet_top[0]), r.on_object(r.deconv)
        rows.append([r.example.name, r.area, a, b, f"{r.deconv_layer} map {r.deconv_map}",
                     a > b if r.measurable else None])
    left = sum(not r.measurable for r in results)
    title = (f"{left} image(s) whose object covers {MAX_OBJECT_AREA:.0%} or more of the input: no comparison"
             if left else "")
    return Table(["image", "object area", "DeNet on object", "deconvnet on object", "deconvnet view",
                  "DeNet higher"], rows, title=title)


def true_vs_wrong_table(net: Any, results: Sequence[Explained]) -> Any:
    """Per image: DeNet of the true class against the most probable wrong class: correlation and share on the object."""
    from ..core.tables import Table

    rows = [[r.example.name, f"{_name(net, r.example.label)} ({_p(r.probabilities[r.example.label])})",
             f"{_name(net, r.wrong)} ({_p(r.probabilities[r.wrong])})",
             class_correlation(r.denet_true, r.denet_wrong), r.on_object(r.denet_true), r.on_object(r.denet_wrong)]
            for r in results]
    return Table(["image", "true class (p)", "wrong class (p)", "r(true, wrong)", "true on object",
                  "wrong on object"], rows)


def compare_nets_table(results: dict[str, Sequence[Explained]]) -> Any:
    """Per image and network: grid pattern at the first stride, share on the object, class specificity.

    Each network's DeNet image of the true class is measured:
    :func:`grid_share` at the network's first-layer stride (0 = no grid,
    1 = nothing but a grid), :func:`object_energy_share`, and the correlation between the
    true and the wrong class's images.
    """
    from ..core.tables import Table

    labels = list(results)
    n = min(len(v) for v in results.values())
    header = ["image"]
    for lab in labels:
        header += [f"{lab}: grid (period {results[lab][0].period})", f"{lab}: on object", f"{lab}: r(true, wrong)"]
    rows = []
    for i in range(n):
        row: list[Any] = [results[labels[0]][i].example.name]
        for lab in labels:
            r = results[lab][i]
            row += [_grid(r), r.on_object(r.denet_true),
                    class_correlation(r.denet_true, r.denet_wrong)]
        rows.append(row)
    return Table(header, rows)


#: DeNet's four readings: (label, top, rectify); the first is the paper's.
OPTIONS: tuple[tuple[str, str, bool], ...] = (
    ("logits, not rectified (the paper)", "logits", False),
    ("logits, rectified", "logits", True),
    ("probabilities, not rectified", "probabilities", False),
    ("probabilities, rectified", "probabilities", True),
)


def option_variants(denet: DeNet, result: Explained) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """DeNet images of an image's true and wrong class under each of the four :data:`OPTIONS`.

    Returns:
        option label -> ``(true class image, wrong class image)``, each ``(C, H, W)``.
    """
    rec = denet.record(result.example.input)
    out = {}
    for label, top, rectify in OPTIONS:
        p = rec.project([result.example.label, result.wrong], top=top, rectify=rectify)
        out[label] = (p.pixels[0].cpu(), p.pixels[1].cpu())
    return out


def options_table(denet: DeNet, results: Sequence[Explained]) -> Any:
    """How much DeNet's open choices matter, over some images: medians per option.

    Columns: the true class's share on the object; the correlation between
    the true and the wrong class's images (class specificity); the
    correlation with the paper's reading of the same class (1: the choice
    changes nothing).
    """
    from ..core.tables import Table

    per: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in OPTIONS}
    for r in results:
        v = option_variants(denet, r)
        paper = v[OPTIONS[0][0]][0]
        for label, (t, w) in v.items():
            per[label].append((r.on_object(t), class_correlation(t, w), class_correlation(t, paper)))
    rows = [[label, _median(x[0] for x in vals), _median(x[1] for x in vals), _median(x[2] for x in vals)]
            for label, vals in per.items()]
    return Table(["DeNet option", "true class on object", "r(true, wrong)", "r(with the paper's reading)"], rows,
                 title=f"medians over {len(results)} image(s)")


def plot_options(net: Any, denet: DeNet, result: Explained) -> Figure:
    """One image: its DeNet image of the true class under each of the four :data:`OPTIONS`."""
    v = option_variants(denet, result)
    return plot_denet_rows(
        [result.example.input],
        [[(t, f"{label}\non object {result.on_object(t):.2f}, r(true, wrong) {class_correlation(t, w):.2f}")
          for label, (t, w) in v.items()]],
        mean=net.mean, std=net.std, masks=[result.example.mask],
        row_titles=[f"{result.example.name}\n(true: {_name(net, result.example.label)})"], size=2.7,
    )


def _grid(r: Explained) -> float:
    """:func:`grid_share` of the true class's DeNet image at the first stride (NaN where that makes no grid)."""
    h, w = r.denet_true.shape[-2:]
    if r.period < 2 or h % r.period or w % r.period:
        return math.nan
    return grid_share(r.denet_true, r.period)


def _median(values: Iterable[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.median(v)) if v else math.nan


def denet_claims(results: dict[str, Sequence[Explained]], pair: tuple[str, str] | None = None) -> Any:
    """Vashishth's claims about DeNet beside what was measured, with a verdict computed from the numbers.

    * §7: DeNet shows what makes the image belong to *a particular
      category*: measured as the median correlation between DeNet images of
      the true and the most probable wrong class; called class-specific when
      it is below 0.5.
    * §8: DeNet captures the image's features better than the deconvnet:
      measured as the share of the energy on the object, DeNet (most probable
      class) against the strongest top-layer map's projection; supported when
      DeNet's is higher on more than half of the images (those whose object
      leaves some background, :data:`MAX_OBJECT_AREA`).
    * §7, Fig. 12 (only with ``pair = (alexnet_label, zfnet_label)``):
      AlexNet's DeNet images show block artifacts, ZFNet's do not: measured
      with :func:`grid_share` at each net's first stride; supported when
      AlexNet's median share is above ZFNet's.

    Args:
        results: network label -> :func:`explain_images` results.
        pair: the labels of the AlexNet- and ZFNet-style networks.

    Returns:
        A :class:`~vizlib.Table`: claim, network, measured, verdict.
    """
    from ..core.tables import Table

    rows = []
    for lab, res in results.items():
        r = _median(class_correlation(x.denet_true, x.denet_wrong) for x in res)
        rows.append(["§7: DeNet images are specific to the class", lab,
                     f"median r(true, wrong) = {r:.2f} over {len(res)} images",
                     "class-specific (r < 0.5)" if r < 0.5 else "mostly the same picture for both classes (r ≥ 0.5)"])
    for lab, res in results.items():
        ok = [x for x in res if x.measurable]
        wins = sum(x.on_object(x.denet_top[0]) > x.on_object(x.deconv) for x in ok)
        a = _median(x.on_object(x.denet_top[0]) for x in ok)
        b = _median(x.on_object(x.deconv) for x in ok)
        rows.append(["§8: DeNet captures the object better than the deconvnet", lab,
                     f"on object: DeNet {a:.2f}, deconvnet {b:.2f} (medians); DeNet higher on {wins} of {len(ok)}"
                     + (f" (left out: {len(res) - len(ok)} where the object fills the image)" if len(ok) < len(res)
                        else ""),
                     ("supported" if wins > len(ok) / 2 else "not supported") if ok else "not measurable here"])
    if pair is not None:
        alex, zf = pair
        ga = _median(_grid(x) for x in results[alex])
        gz = _median(_grid(x) for x in results[zf])
        rows.append(["§7, Fig. 12: block artifacts in AlexNet's DeNet images, not in ZFNet's", f"{alex} vs {zf}",
                     f"share of the image in a grid (medians): {alex} {ga:.2f} (period {results[alex][0].period}), "
                     f"{zf} {gz:.2f} (period {results[zf][0].period})",
                     "supported" if ga > gz else "not supported"])
    return Table(["claim", "network", "measured", "verdict"], rows)


# --------------------------------------------------------------------------- figures


def plot_denet_rows(
    inputs: Sequence[torch.Tensor],
    panels: Sequence[Sequence[tuple[torch.Tensor, str]]],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    masks: Sequence[torch.Tensor | None] | None = None,
    row_titles: Sequence[str] | None = None,
    size: float = 2.0,
) -> Figure:
    """One row per image: the input, then visualisations (DeNet, deconvnet, ...) with titles.

    Args:
        inputs: prepared images ``(C, H, W)``.
        panels: for each image, ``(visualisation (C, H, W), title)`` pairs;
            shown with zero as mid-grey (:func:`normalize_projection`).
        mean, std: the net's normalisation, undone to show the input.
        masks: object regions, outlined in yellow on every panel of the row.
        row_titles: title of each input.
        size: inches per panel.

    Returns:
        A matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    cols = 1 + max((len(p) for p in panels), default=0)
    fig, axes = plt.subplots(len(inputs), cols, figsize=(size * cols, size * 1.12 * len(inputs)), squeeze=False)
    for r, (x, row) in enumerate(zip(inputs, panels)):
        shown = [(to_display(x, mean, std), row_titles[r] if row_titles else "input")]
        shown += [(normalize_projection(v), t) for v, t in row]
        m = masks[r] if masks is not None else None
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(shown):
                continue
            img, title = shown[c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if m is not None:
                ax.contour(np.asarray(m, dtype=float), levels=[0.5], colors="yellow", linewidths=0.8)
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_top_classes(net: Any, results: Sequence[Explained]) -> Figure:
    """One row per image: the input, then the DeNet image of each of its most probable classes."""
    return plot_denet_rows(
        [r.example.input for r in results],
        [[(v, f"{_name(net, c)} (p={_p(r.probabilities[c])})\non object {r.on_object(v):.2f}")
          for c, v in zip(r.top, r.denet_top)] for r in results],
        mean=net.mean, std=net.std, masks=[r.example.mask for r in results],
        row_titles=[f"{r.example.name}\n(object {r.area:.2f})" for r in results],
    )


def plot_denet_vs_deconvnet(net: Any, results: Sequence[Explained]) -> Figure:
    """Vashishth Fig. 13: the input, DeNet of the most probable class, the deconvnet view of the strongest top map."""
    return plot_denet_rows(
        [r.example.input for r in results],
        [[(r.denet_top[0], f"DeNet: {_name(net, r.top[0])}\non object {r.on_object(r.denet_top[0]):.2f}"),
          (r.deconv, f"deconvnet: {r.deconv_layer} map {r.deconv_map}\non object {r.on_object(r.deconv):.2f}")]
         for r in results],
        mean=net.mean, std=net.std, masks=[r.example.mask for r in results],
        row_titles=[f"{r.example.name}\n(object {r.area:.2f})" for r in results], size=2.4,
    )


def plot_true_vs_wrong(net: Any, results: Sequence[Explained]) -> Figure:
    """The input, DeNet of its true class and of the most probable wrong class, with their correlation."""
    return plot_denet_rows(
        [r.example.input for r in results],
        [[(r.denet_true, f"true: {_name(net, r.example.label)} (p={_p(r.probabilities[r.example.label])})"),
          (r.denet_wrong, f"wrong: {_name(net, r.wrong)} (p={_p(r.probabilities[r.wrong])})\n"
                          f"r = {class_correlation(r.denet_true, r.denet_wrong):.2f}")] for r in results],
        mean=net.mean, std=net.std, row_titles=[r.example.name for r in results], size=2.4,
    )


def plot_nets_side_by_side(nets: dict[str, Any], results: dict[str, Sequence[Explained]]) -> Figure:
    """Vashishth Fig. 12: each image, then each network's DeNet image of its true class."""
    labels = list(results)
    n = min(len(v) for v in results.values())
    first = results[labels[0]]
    return plot_denet_rows(
        [first[i].example.input for i in range(n)],
        [[(results[lab][i].denet_true,
           f"{lab}: grid {_grid(results[lab][i]):.2f}\n"
           f"on object {results[lab][i].on_object(results[lab][i].denet_true):.2f}") for lab in labels]
         for i in range(n)],
        mean=nets[labels[0]].mean, std=nets[labels[0]].std,
        row_titles=[f"{first[i].example.name}\n(true: {_name(nets[labels[0]], first[i].example.label)})"
                    for i in range(n)], size=2.4,
    )


def denet_figure(
    net: Any,
    example: DeNetImage,
    target: int | None = None,
    *,
    top: str = "logits",
    rectify: bool = False,
    denet: DeNet | None = None,
) -> Figure:
    """Input, DeNet image of a class and the deconvnet projection of the strongest top-layer map, with measures.

    The titles give each visualisation's :func:`object_energy_share` (the
    mask's own area share is what an even spread would get).
    """
    dn = denet or DeNet(net)
    rec = dn.record(example.input)
    target = rec.predicted() if target is None else target
    p = rec.project(target, top=top, rectify=rectify)
    d = rec.strongest_map()
    cats = getattr(net, "categories", None)
    name = cats[target] if cats else str(target)
    prob = float(rec.probabilities[0, target])
    e_dn = object_energy_share(p.pixels[0], example.mask)
    e_dc = object_energy_share(d.pixels[0], example.mask)
    return plot_denet_rows(
        [example.input],
        [[(p.pixels[0], f"DeNet '{name}' (p={_p(prob)})\non object {e_dn:.2f}"),
          (d.pixels[0], f"deconvnet {d.layer} map {int(d.channel[0])}\non object {e_dc:.2f}")]],
        mean=net.mean, std=net.std, masks=[example.mask],
        row_titles=[f"{example.name}\nobject = {float(example.mask.float().mean()):.2f} of image"], size=2.6,
    )


def denet_explorer(nets: dict[str, Any], examples: dict[str, Sequence[DeNetImage]]) -> Any:
    """Pick a network, an image, a class and DeNet's two options; see :func:`denet_figure`.

    Args:
        nets: label -> :class:`~vizlib.Net`.
        examples: the same labels -> that net's images (:func:`denet_images`).

    Returns:
        An ipywidgets widget.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    denets = {k: DeNet(v) for k, v in nets.items()}
    pick = W.Dropdown(options=list(nets), description="network")
    img = W.Dropdown(description="image")
    cls = W.Dropdown(description="class")
    top = W.ToggleButtons(options=list(TOPS), value="logits", description="top")
    rect = W.Checkbox(value=False, description="rectify between dense layers")
    out = W.Output()
    quiet = [False]  # while the dropdowns are refilled, their change events draw nothing

    def classes() -> None:
        net = nets[pick.value]
        ex = examples[pick.value][img.value or 0]
        pred = denets[pick.value].record(ex.input).predicted()
        cls.options = [(f"{c}{' (true)' if i == ex.label else ''}{' (predicted)' if i == pred else ''}", i)
                       for i, c in enumerate(net.categories)]
        cls.value = pred

    def refill(images: bool, first: bool = False) -> None:
        quiet[0] = True
        try:
            if images:
                img.options = [(e.name, i) for i, e in enumerate(examples[pick.value])]
                img.value = 0
            classes()
        finally:
            quiet[0] = False
        show(first=first)

    def content() -> None:
        fig = denet_figure(nets[pick.value], examples[pick.value][img.value], cls.value, top=top.value,
                           rectify=rect.value, denet=denets[pick.value])
        display(fig)
        plt.close(fig)

    def show(*_: object, first: bool = False) -> None:
        if quiet[0] or cls.value is None or img.value is None:
            return
        # the first drawing runs while the cell executes: no Output context there (a headless executor stalls)
        from ..chapters.widgets import _draw

        _draw(out, content, first)

    pick.observe(lambda *_: refill(True), "value")
    img.observe(lambda *_: None if quiet[0] else refill(False), "value")
    for w in (cls, top, rect):
        w.observe(show, "value")
    refill(True, first=True)
    return W.VBox([W.HBox([pick, img]), W.HBox([cls, top, rect]), out])
