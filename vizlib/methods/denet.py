"""DeNet (Vashishth, §7-8): a class vector sent back through the whole network to the pixels.

The deconvnet (:class:`vizlib.Deconvnet`) starts from a convolutional layer.
DeNet starts from the *output*: a one-hot vector naming a class (or any
weighting of the classes) is sent down

* through each dense layer: **subtract the bias, multiply by the transposed
  weight** (Vashishth: "the tensor is multiplied by the transpose of the
  weight matrix used during the forward pass after subtracting the bias");
* reshaped to the last pooled map (the input of the first dense layer);
* then through the convolutional part with the deconvnet (Zeiler & Fergus):
  unpooling with the switches of the image being explained, rectification,
  transposed filtering. This part is :meth:`vizlib.methods.deconvnet.Recording.project_signal`.

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

Two measures of DeNet images live here too: :func:`class_correlation` (how
class-specific they are) and :func:`grid_share` (Vashishth's "block
artifacts"). The share of a visualisation's energy on the object is
:func:`vizlib.energy_inside`. Chapter 7's images, tables, claims, figures and
explorer are in :mod:`vizlib.chapters.ch07`.

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    rec = vl.DeNet(net).record(image)
    p = rec.project(rec.top_classes(3))        # one DeNet image per class
    p.pixels.shape, p.correlations()           # (3, C, H, W); how alike the three are
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ArgumentError, NoDenseLayers, UnsupportedLayer
from ..core.hooks import Call, trace
from ..core.images import _unwrap, check_image, load_image
from ..core.layers import resolve_layer
from .deconvnet import Deconvnet, Projection, Recording, normalize_projection

__all__ = [
    "DeNet",
    "DeNetRecording",
    "DeNetProjection",
    "TOPS",
    "PROBABILITY_FLOOR",
    "class_correlation",
    "class_correlations",
    "grid_share",
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


def _maps(shape: torch.Size) -> tuple[int, ...]:
    """A traced shape without its batch axis."""
    return tuple(int(s) for s in shape[1:])


def _analyse(model: nn.Module, calls: list[Call]) -> _Chain:
    """Find the dense layers, what lies between them, and the pooled map below them."""
    lin = [i for i, c in enumerate(calls) if isinstance(c.module, nn.Linear)]
    if not lin:
        raise NoDenseLayers(
            "DeNet starts from the class scores of a dense output layer, and this network's forward pass "
            "calls no nn.Linear layer. Use vl.Deconvnet to project its convolutional layers instead"
        )
    paths = [calls[i].path for i in lin]
    if len(set(paths)) != len(paths):
        raise UnsupportedLayer("a dense layer is called more than once in the forward pass; DeNet needs a chain")
    first, last = lin[0], lin[-1]

    def label(path: str) -> str:
        return resolve_layer(model, path)[0]

    relu_below = [False]
    for j in range(1, len(lin)):
        relu = False
        for c in calls[lin[j - 1] + 1 : lin[j]]:
            if isinstance(c.module, nn.ReLU):
                relu = True
            elif not isinstance(c.module, _PASS):
                raise UnsupportedLayer(
                    f"DeNet goes back through the dense layers with their biases and transposed weights, and "
                    f"layer {label(c.path)} ({_describe(c.module)}) between {label(paths[j - 1])} and "
                    f"{label(paths[j])} is neither a ReLU nor a dropout/identity/flatten it could pass. "
                    "Use a network whose dense part is built from these layers"
                )
        relu_below.append(relu)
    for k in range(first + 1, last + 1):  # the dense part must be a chain
        if calls[k].takes(calls[k - 1].out_ptr, calls[k - 1].out_version):
            raise UnsupportedLayer(
                f"layer {label(calls[k].path)} does not take the output of {label(calls[k - 1].path)} as its input "
                "(a branch, or a tensor operation outside any module, in place or not, lies between them); "
                "DeNet needs a chain"
            )

    k = first - 1
    while k >= 0 and len(_maps(calls[k].out_shape)) != 3:
        if not isinstance(calls[k].module, _PASS):
            raise UnsupportedLayer(
                f"between the feature maps and the first dense layer {label(paths[0])} lies layer "
                f"{label(calls[k].path)} ({_describe(calls[k].module)}), which DeNet cannot go back through "
                "(only dropout, identity and flatten)"
            )
        k -= 1
    if k < 0:
        raise UnsupportedLayer(
            f"no layer with feature maps lies below the first dense layer {label(paths[0])}: DeNet sends the class "
            "vector down to a convolutional network's last pooled map; this network has none"
        )
    start, start_shape = calls[k].path, _maps(calls[k].out_shape)
    in_features = calls[first].module.in_features
    if int(np.prod(start_shape)) != in_features:
        raise UnsupportedLayer(
            f"the first dense layer {label(paths[0])} takes {in_features} inputs, but the feature maps below it "
            f"({label(start)}) hold {int(np.prod(start_shape))} values"
        )
    for j in range(k + 1, first + 1):
        if calls[j].takes(calls[j - 1].out_ptr, calls[j - 1].out_version):
            raise UnsupportedLayer(
                f"layer {label(calls[j].path)} does not take the output of {label(calls[j - 1].path)} as its input "
                "(unchanged: an in-place operation counts too); DeNet needs a chain from the pooled map to the "
                "dense layers"
            )
    convs = [i for i in range(k + 1) if isinstance(calls[i].module, nn.Conv2d)]
    if convs:
        c = convs[-1]
        top_conv = calls[c + 1].path if c + 1 <= k and isinstance(calls[c + 1].module, nn.ReLU) else calls[c].path
    else:
        top_conv = start
    names = []
    for i in lin:
        own = label(calls[i].path)
        if own == calls[i].path and i + 1 < len(calls) and isinstance(calls[i + 1].module, nn.ReLU):
            after = label(calls[i + 1].path)  # fc6 and fc7 point at their ReLU
            own = after if after != calls[i + 1].path else own
        names.append(own)
    return _Chain(tuple(paths), tuple(names), tuple(relu_below), start,
                  start_shape, top_conv, int(calls[last].module.out_features))  # type: ignore[arg-type]


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

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> images = DeNet(alexnet_fmnist(seed=0)).project(torch.randn(1, 64, 64), [0, 3])
        >>> images.layer, images.top, images.vector.shape
        ('avgpool', 'logits', torch.Size([2, 10]))
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
        """For an image display (``imshow``): zero is mid-grey, each image scaled on its own.

        See :func:`~vizlib.methods.deconvnet.normalize_projection`.
        """
        return normalize_projection(self.pixels if i is None else self.pixels[i])

    def correlations(self) -> np.ndarray:
        """How alike the DeNet images are: their pairwise :func:`class_correlation`, a ``(B, B)`` array.

        Example:
            >>> from vizlib.models import alexnet_fmnist
            >>> p = DeNet(alexnet_fmnist(seed=0)).project(torch.randn(1, 64, 64), [0, 3])
            >>> p.correlations().shape
            (2, 2)
        """
        return class_correlations(self.pixels)


# --------------------------------------------------------------------------- DeNet


def _floatlike(x: Any) -> bool:
    return isinstance(x, float) or (isinstance(x, torch.Tensor) and x.is_floating_point()) or (
        isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating))


class DeNetRecording:
    """One forward pass of some images, kept for DeNet (and deconvnet) projections.

    Made by :meth:`DeNet.record`.

    Attributes:
        logits: ``(N, K)`` the network's output for each image.
        recording: the deconvnet :class:`~vizlib.methods.deconvnet.Recording` underneath (it
            also holds the top convolutional layer, for
            :meth:`strongest_map`, and any ``also`` layers).
        images: number of images recorded.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> rec = DeNet(alexnet_fmnist(seed=0)).record(torch.zeros(1, 64, 64))
        >>> rec.images, rec.logits.shape
        (1, torch.Size([1, 10]))
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

    def class_vectors(
        self, target: Any = None, weights: Any = None, *, image: int = 0
    ) -> tuple[torch.Tensor, list[int | None]]:
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
        idx = self._dn._class_indices(target, self._chain)
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
            A full-size :class:`~vizlib.methods.deconvnet.Projection`; ``channel[0]`` is the map.
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
        ArgumentError: ``model`` is neither a module nor a Net.
        DeviceError: ``device`` is not available here, or the model lives on the meta device.

    Example:
        >>> from vizlib.models import zfnet_fmnist
        >>> dn = DeNet(zfnet_fmnist(seed=0))
        >>> p = dn.project(torch.randn(1, 64, 64), 7)
        >>> p.pixels.shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, model: Any, *, device: torch.device | str | None = None) -> None:
        module, transform = _unwrap(model, need="DeNet")
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

    def _class_indices(self, target: Any, chain: _Chain | None) -> list[int]:
        """Class indices from a class, a name or several; in range when ``chain`` is given (the type
        checks need no forward pass, so :meth:`project` makes them first)."""
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
                idx.append(self._class_index(t))
                continue
            if isinstance(t, bool) or _floatlike(t) or not isinstance(t, (int, np.integer)):
                raise ArgumentError(
                    f"a class must be given by its index (an int) or its name, not {t!r}; "
                    "for a weighting of classes pass weights=..."
                )
            if chain is not None and not 0 <= int(t) < chain.classes:
                k = chain.classes
                raise ValueError(
                    f"class {int(t)} is out of range: the output layer {chain.dense_labels[-1]} "
                    f"has {k} classes (0..{k - 1})"
                )
            idx.append(int(t))
        return idx

    def chain(self, input_shape: Sequence[int]) -> _Chain:
        """The dense layers and the pooled map below them, for inputs of shape ``(C, H, W)`` (cached)."""
        key = tuple(int(s) for s in input_shape)
        if key not in self._chains:
            p = next(self.model.parameters(), None)
            x = torch.zeros(1, *key, dtype=p.dtype if p is not None else torch.float32,
                            device=p.device if p is not None else None)
            self._chains[key] = _analyse(self.model, trace(self.model, x).calls)
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
        """An image as the network's ``(N, C, H, W)`` input.

        A tensor is checked as it is; a file, PIL image or array goes through
        :func:`vizlib.load_image` with the Net's transform, converted to the
        colour mode the network takes (its size is checked after the transform:
        the bundled nets enlarge Fashion-MNIST's 28×28 images to 64×64).

        Example:
            >>> from vizlib.models import zfnet_fmnist
            >>> DeNet(zfnet_fmnist(seed=0)).prepare(torch.zeros(1, 64, 64)).shape
            torch.Size([1, 1, 64, 64])
        """
        if isinstance(image, torch.Tensor):
            return check_image(image, self.model, batch=batch)
        return load_image(image, self.model, transform=self.transform, convert=True)

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
        self, image: Any, target: int | str | Sequence[int | str] | None = None, **options: Any
    ) -> DeNetProjection:
        """DeNet images of one image: record it, then :meth:`DeNetRecording.project`.

        ``project(img)``: the predicted class; ``project(img, [3, 5])``: two
        classes; ``project(img, weights=w)``: a weighting of the classes.

        Args:
            image: as for :meth:`record` (one image).
            target: a class (index or name) or several; default the predicted class.
            options: ``weights``, ``top``, ``rectify``, ``eps``, ``batch_size``,
                ``progress``, as for :meth:`DeNetRecording.project`.

        Raises:
            ArgumentError: a class given as neither an index nor a name (``2.5``,
                ``True``; a ``TypeError``), before any forward pass.
            ValueError: an unknown class name, a class index out of range.
            ImageError, InputTooSmall: the image does not fit the network, or
                has NaN or infinite pixels (the message counts them).
            UnsupportedLayer: a layer DeNet cannot go back through, or an
                in-place operation between its layers.

        Example:
            >>> from vizlib.models import zfnet_fmnist
            >>> DeNet(zfnet_fmnist(seed=0)).project(torch.randn(1, 64, 64), [1, 2], rectify=True).target
            [1, 2]
        """
        if target is not None:
            self._class_indices(target, None)  # its form, before any forward pass
        return self.record(image).project(target, **options)

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
    """All pairwise :func:`class_correlation` of ``B`` visualisations ``(B, ...)``: a ``(B, B)`` array.

    Example:
        >>> a = torch.tensor([1.0, 2.0, 3.0])
        >>> class_correlations(torch.stack([a, -a])).round(3).tolist()
        [[1.0, -1.0], [-1.0, 1.0]]
    """
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
