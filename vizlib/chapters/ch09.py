"""Chapter 9, the rest of the family (Masum §III-A, B and C): activation maximisation, network
inversion (Mahendran & Vedaldi) and network dissection (Bau et al.): the chapter's workload,
layers and concepts, its readings, tables, claims, figures and explorer.

The methods are :func:`vizlib.maximise` and :func:`vizlib.compare_regularisers`
(:mod:`vizlib.methods.maximisation`), :func:`vizlib.invert` (:mod:`vizlib.methods.inversion`) and
:func:`vizlib.dissect` (:mod:`vizlib.methods.dissection`); this module shows what they compute.
The top-9 patches and projections beside each synthesized image are chapter 3's
(:func:`vizlib.top_activations`, :meth:`~vizlib.methods.topk.TopActivations.collect`).

Example::

    import vizlib as vl
    from vizlib.chapters import ch09 as ch
    net = vl.load("alexnet", "bundled")
    work = ch.workload(smoke=True)
    data = ch.chapter_data(net, work.images)
    layers = ch.stage_layers(net)
    inv = vl.invert(net, ch.inversion_images(data, 1), ch.inversion_layers(net), lr=ch.schedule(work.inversion_steps))
    ch.claims_table(ch.inversion_claims(inv))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..core.examples import example_dataset
from ..core.images import to_display
from ..core.measures import transform_mask
from ..core.tables import Table
from ..methods.dissection import Broden, ConceptSet, Dissection, bundled_concepts
from ..methods.inversion import Inversion, authors_schedule
from ..methods.inversion import _pearson as _corr  # one definition of the per-image correlation
from ..methods.maximisation import Maximisation, maximise
from ..methods.topk import TopActivations, top_activations
from .claims import Claim, claims_table, number

__all__ = [
    "Workload",
    "workload",
    "stage_layers",
    "inversion_layers",
    "chapter_data",
    "chosen_units",
    "COMPARED",
    "filter_image",
    "reach_table",
    "reach_claim",
    "plot_regularisers",
    "plot_beside_top9",
    "schedule",
    "inversion_images",
    "layout_detail",
    "inversion_table",
    "inversion_claims",
    "plot_inversion",
    "plot_inversion_curves",
    "chapter_concepts",
    "dissection_table",
    "dissection_claims",
    "plot_dissection",
    "unit_examples",
    "plot_unit_masks",
    "claims_table",
    "family_explorer",
    "inversion_static",
]

AM = "Masum §III-A (Erhan; Simonyan; Yosinski; Olah)"
INV = "Masum §III-B (Mahendran & Vedaldi)"
DISS = "Masum §III-C (Bau et al.)"

#: The regularisers the comparison figure sets side by side, in its order.
COMPARED: tuple[str | tuple[str, ...], ...] = ("none", "l2", "tv", "blur", "transforms", "fourier", ("fourier", "transforms"))

_SHORT = {"none": "none", "l2": "L2 decay", "tv": "total variation", "blur": "blur", "transforms": "transforms",
          "fourier": "Fourier 1/f", "fourier+transforms": "Fourier + transforms"}


# --------------------------------------------------------------------------- workload, layers, data


@dataclass(frozen=True)
class Workload:
    """How much the chapter computes: smaller under ``VIZLIB_SMOKE`` (the tests), the papers' amounts otherwise.

    Attributes:
        smoke: the smoke workload.
        images: images mined for the dataset maxima and top-9 (``None``: all the chapter's).
        units: feature maps per layer whose synthesized image is compared with the dataset maximum.
        compared_units: units in the regulariser comparison.
        steps: gradient-ascent steps.
        inversion_images: images inverted.
        inversion_steps: inversion steps (the authors' 400 in full).
        dissection_images: images dissected (``None``: all of the concept set).
    """

    smoke: bool
    images: int | None
    units: int
    compared_units: int
    steps: int
    inversion_images: int
    inversion_steps: int
    dissection_images: int | None


def workload(smoke: bool, small_net: bool = True) -> Workload:
    """The chapter's workload: smoke (about a minute on two cores) or full (the papers' amounts, minutes).

    Args:
        smoke: the smoke workload (``VIZLIB_SMOKE``).
        small_net: the net is a bundled one (64-pixel inputs); a full-size net gets fewer units and images.

    Example:
        >>> workload(True).steps, workload(False).inversion_steps
        (96, 400)
    """
    if smoke:
        return Workload(True, 300, 4 if small_net else 3, 2, 96 if small_net else 24, 1,
                        400 if small_net else 40, 200 if small_net else 60)
    return Workload(False, None, 16 if small_net else 6, 4, 256 if small_net else 128, 3,
                    400 if small_net else 200, None if small_net else 300)


def stage_layers(net: Any) -> list[str]:
    """The last convolution of each stage, in forward order: ``c1 … c5`` for AlexNet and ZFNet,
    ``c1_2, c2_2, c3_3, c4_3, c5_3`` for VGG-16.

    Example:
        >>> import vizlib as vl
        >>> stage_layers(vl.load("vgg16", "random"))
        ['c1_2', 'c2_2', 'c3_3', 'c4_3', 'c5_3']
    """
    last: dict[str, str] = {}
    for name in net.layers:
        m = re.match(r"^c(\d+)(?:_\d+)?$", name)
        if m:
            last[m.group(1)] = name
    return list(last.values())


def inversion_layers(net: Any) -> list[str]:
    """Mahendran & Vedaldi's Fig. 6 rows, as this book names them: every conv stage and the dense layers.

    Example:
        >>> import vizlib as vl
        >>> inversion_layers(vl.load("alexnet", "random"))
        ['c1', 'c2', 'c3', 'c4', 'c5', 'fc6', 'fc7', 'fc8']
    """
    return stage_layers(net) + [n for n in net.layers if n.startswith("fc")]


def chapter_data(net: Any, limit: int | None = None) -> Any:
    """The images the chapter mines (dataset maxima, top-9): chapter 3's dataset for this net
    (the composed test sample for the Bundled set, the demo photos otherwise).

    Example:
        >>> import vizlib as vl
        >>> len(chapter_data(vl.load("alexnet", "bundled"), 20))
        20
    """
    return example_dataset(net, limit)


def chosen_units(top: TopActivations, n: int, seed: int = 0) -> list[int]:
    """``n`` feature maps drawn at random (seeded) among those that fire on the data (dataset maximum > 0),
    sorted: drawn, not the strongest, so that the share that reaches its maximum is not a best case.

    Example:
        >>> t = TopActivations("c1", 1, torch.tensor([[2.0], [0.0], [1.0], [3.0]]), torch.zeros(4, 1, dtype=torch.long),
        ...                    torch.zeros(4, 1, 2, dtype=torch.long), 10)
        >>> chosen_units(t, 2, seed=0) in ([0, 2], [0, 3], [2, 3])
        True
    """
    live = torch.nonzero(top.values[:, 0] > 0).flatten().tolist()
    if len(live) <= n:
        return sorted(live)
    pick = np.random.default_rng(seed).choice(len(live), size=n, replace=False)
    return sorted(int(live[i]) for i in pick)


# --------------------------------------------------------------------------- activation maximisation


def filter_image(net: Any, layer: str, unit: int) -> torch.Tensor:
    """The gradient of a map's centre unit (its objective, before the ReLU) with respect to the input,
    image-shaped ``(C, H, W)``: for a first-layer unit, its filter placed on its receptive field, the
    maximiser of the unit under an L2 constraint (up to scale).

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> g = filter_image(alexnet_fmnist(seed=0), "c1", 0)            # doctest: +SKIP
    """
    from ..core.hooks import Capture, preserved
    from ..core.images import _unwrap
    from ..methods.maximisation import objective_site

    module, _ = _unwrap(net, need="filter_image")
    _, _, site, _ = objective_site(module, layer)
    side = int(getattr(net, "input_size", 0) or 64)
    channels = int(getattr(net, "in_channels", 0) or 3)
    x = torch.zeros(1, channels, side, side, requires_grad=True)
    with preserved(module), Capture(module, [site], detach=False, stop=True) as cap:
        for p in module.parameters():
            p.requires_grad_(False)
        a = next(iter(cap.run(x).values()))
        a[0, unit, a.shape[2] // 2, a.shape[3] // 2].backward()
    return x.grad[0].detach()



def reach_table(results: dict[str, Maximisation]) -> Table:
    """Per layer: units, how many synthesized images reach the unit's dataset maximum, the share, the
    median activation over the dataset maximum, and the median step that reached it.

    Example:
        >>> m = Maximisation("c1", torch.tensor([0, 1]), "map", ("none",), torch.zeros(2, 1, 4, 4),
        ...                  torch.tensor([2.0, 0.5]), torch.tensor([2.0, 0.5]), torch.zeros(2), torch.tensor([1.0, 1.0]),
        ...                  8, torch.tensor([8, -1]))
        >>> reach_table({"c1": m}).rows
        [['c1', 2, 1, 0.5, 1.25, 8]]
    """
    rows = []
    for layer, am in results.items():
        steps = am.steps_to_reach[am.steps_to_reach > 0].float() if am.steps_to_reach is not None else torch.zeros(0)
        rows.append([layer, len(am.channels), int(am.reached.sum()), round(am.share_reached, 3),
                     round(float(np.nanmedian(am.ratio.numpy())), 3),
                     int(round(float(np.median(steps.numpy())))) if len(steps) else "—"])
    return Table(["layer", "units", "reached", "share", "median activation / dataset max", "median step reached"],
                 rows, "Synthesized images against each unit's largest activation over the dataset")


def reach_claim(results: dict[str, Maximisation]) -> Claim:
    """Masum §III-A: the synthesized input "can cause the maximal activation of a neuron". Supported when
    more than half of all the units shown (every layer together) reach their dataset maximum.

    Example:
        >>> m = Maximisation("c1", torch.tensor([0, 1, 2]), "map", ("none",), torch.zeros(3, 1, 4, 4),
        ...                  torch.tensor([2.0, 0.5, 3.0]), torch.zeros(3), torch.zeros(3), torch.tensor([1.0, 1.0, 1.0]), 8)
        >>> c = reach_claim({"c1": m})
        >>> c.verdict, c.measured
        ('supported', 'reached by 2 of 3 units (share 0.667): c1 2/3')
    """
    n = sum(len(am.channels) for am in results.values())
    hit = sum(int(am.reached.sum()) for am in results.values())
    per = ", ".join(f"{layer} {int(am.reached.sum())}/{len(am.channels)}" for layer, am in results.items())
    share = round(hit / n, 3) if n else None
    return Claim.judge(AM, "the synthesized image drives its unit at least as hard as any dataset image, for most units",
                       f"reached by {hit} of {n} units (share {number(share)}): {per}",
                       share > 0.5 if share is not None else None)


def _grey(a: np.ndarray) -> str | None:
    return "gray" if a.ndim == 2 else None


def plot_regularisers(results: dict[str, Maximisation], *, size: float = 1.0) -> Figure:
    """The same units maximised under each regulariser, side by side: a row per unit, a column per
    regulariser; each title gives the activation over the unit's dataset maximum (above 1: reached).

    Args:
        results: regulariser name -> :class:`~vizlib.methods.maximisation.Maximisation` of the same units
            (:func:`vizlib.compare_regularisers`).
        size: inches per image.

    Returns:
        The Figure.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> import vizlib as vl
        >>> out = vl.compare_regularisers(alexnet_fmnist(seed=0), "c1", [0], ["none", "tv"], size=64, steps=2)
        >>> len(plot_regularisers(out).axes)
        2
    """
    names = list(results)
    first = results[names[0]]
    rows, cols = len(first.channels), len(names)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.3, (size + 0.2) * rows + 0.75), squeeze=False)
    for j, name in enumerate(names):
        am = results[name]
        ratio = am.ratio if am.dataset_max is not None else None
        for i in range(rows):
            ax = axes[i, j]
            img = am.image(i)
            ax.imshow(img, cmap=_grey(img), vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if ratio is not None and not math.isnan(float(ratio[i])):
                ax.set_xlabel(f"×{float(ratio[i]):.2f}", fontsize=8, labelpad=1)
            if i == 0:
                ax.set_title(_SHORT.get(name, name).replace(" + ", " +\n"), fontsize=8, pad=3)
            if j == 0:
                ax.set_ylabel(f"{am.layer} map {int(am.channels[i])}", fontsize=8)
    fig.suptitle(f"{first.layer}: one image per map and regulariser, {first.steps} steps "
                 "(× activation / dataset maximum)", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.2)
    return fig


def _tile(images: Sequence[np.ndarray], n: int = 3) -> np.ndarray:
    """Images in an ``n``-wide grid with 1-pixel white gaps (each padded to the largest's size)."""
    if not images:
        return np.full((8, 8), 0.5)
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    rows = -(-len(images) // n)
    grid = np.ones((rows * h + rows - 1, n * w + n - 1) + images[0].shape[2:], dtype=float)
    for k, img in enumerate(images):
        r, c = divmod(k, n)
        grid[r * (h + 1): r * (h + 1) + img.shape[0], c * (w + 1): c * (w + 1) + img.shape[1]] = img
    return grid


def _stretched(p: np.ndarray) -> np.ndarray:
    """A projection (grey 0.5 is zero) with its own contrast stretched, zero kept at 0.5: its 99th
    percentile of distance from grey goes to the full range (the few strongest pixels clip)."""
    d = float(np.percentile(np.abs(p - 0.5), 99))
    return p if d < 1e-12 else np.clip(0.5 + (p - 0.5) * (0.5 / d), 0.0, 1.0)


def plot_beside_top9(am: Maximisation, top: TopActivations, *, per_row: int = 2) -> Figure:
    """Each synthesized image beside the same unit's top-9 dataset patches and their deconvnet projections
    (chapter 3): what the unit is driven by in input space, against what drives it in real images. Each
    projection is stretched to its own contrast (grey stays zero): a high layer's are faint otherwise.

    Args:
        am: synthesized images of some units of a layer.
        top: the same layer's :class:`~vizlib.methods.topk.TopActivations` with those units collected.
        per_row: units per row (three panels each).

    Returns:
        The Figure.

    Raises:
        ValueError: ``top`` has not collected a unit of ``am``.

    Example:
        >>> fig = plot_beside_top9(am, top.collect(net, data, am.channels.tolist()))   # doctest: +SKIP
    """
    if top.channels is None or top.projections is None:
        raise ValueError("the TopActivations have no patches: call top.collect(net, data, channels) first")
    have = [int(c) for c in top.channels]
    units = [int(c) for c in am.channels]
    missing = [c for c in units if c not in have]
    if missing:
        raise ValueError(f"maps {missing} were not collected; collect them: top.collect(net, data, {units})")
    rows = -(-len(units) // per_row)
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(1.25 * 3 * per_row, 1.45 * rows + 0.35), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    ratio = am.ratio if am.dataset_max is not None else None
    for i, c in enumerate(units):
        r, col = divmod(i, per_row)
        a0, a1, a2 = axes[r, 3 * col], axes[r, 3 * col + 1], axes[r, 3 * col + 2]
        img = am.image(i)
        a0.imshow(img, cmap=_grey(img), vmin=0, vmax=1)
        head = f"{am.layer} map {c}" + ("" if ratio is None or math.isnan(float(ratio[i])) else f" ×{float(ratio[i]):.2f}")
        a0.set_title(head, fontsize=8, pad=2)
        patches = top.patch_images(c, clip=False)
        projs = [_stretched(p) for p in top.projection_images(c, clip=False)]
        a1.imshow(_tile(patches), cmap=_grey(patches[0]) if patches else "gray", vmin=0, vmax=1)
        a1.set_title("top-9 patches", fontsize=8, pad=2)
        a2.imshow(_tile(projs), cmap=_grey(projs[0]) if projs else "gray", vmin=0, vmax=1)
        a2.set_title("projections", fontsize=8, pad=2)
    fig.suptitle(f"{am.layer}: synthesized ({'+'.join(am.regulariser)}) beside the dataset's top 9", fontsize=9)
    # the top 0.3 inch is the suptitle's: tight_layout alone moves the panel titles up into it
    fig.tight_layout(pad=0.3, h_pad=0.5, w_pad=0.3, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return fig


# --------------------------------------------------------------------------- inversion


def schedule(steps: int) -> list[float]:
    """The authors' learning-rate schedule (0.004, then a tenth, then a hundredth, for a quarter, a half
    and a quarter of the steps) fitted to ``steps`` steps; 400 gives theirs exactly.

    Example:
        >>> s = schedule(400)
        >>> s == authors_schedule(), len(schedule(40)), schedule(40)[9:11]
        (True, 40, [0.004, 0.0004])
    """
    if steps == 400:
        return authors_schedule()
    a = max(1, round(steps / 4))
    c = max(1, round(steps / 4))
    b = max(1, steps - a - c)
    return [0.004] * a + [0.0004] * b + [0.00004] * c


def inversion_images(data: Any, n: int) -> torch.Tensor:
    """``n`` images of the chapter's data, one of each class where it can (the first of each), as a batch.

    Example:
        >>> import vizlib as vl
        >>> inversion_images(chapter_data(vl.load("alexnet", "bundled"), 50), 2).shape
        torch.Size([2, 1, 64, 64])
    """
    labels = [int(lab) for lab in getattr(data, "labels", [])]
    picked: list[int] = []
    seen: set[int] = set()
    for i, lab in enumerate(labels):
        if lab not in seen:
            seen.add(lab)
            picked.append(i)
        if len(picked) == n:
            break
    picked += [i for i in range(len(data)) if i not in picked][: n - len(picked)]
    return torch.stack([data[i][0] for i in picked[:n]])


def layout_detail(inv: Inversion, cells: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Layout and detail, as two correlations per image and layer: ``(coarse, fine)``, each ``(N, L)``.

    *coarse* is the pixel correlation of reconstruction and original after both are averaged into a
    ``cells x cells`` grid (the layout: where light and dark are); *fine* is the correlation of what is left
    (each image minus its grid average upsampled: edges and texture, the detail).

    Example:
        >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> inv = Inversion(["c1"], x[:, None].clone(), x, torch.zeros(1, 1), torch.ones(1, 1), [1.0], 1)
        >>> [round(float(v), 6) for v in layout_detail(inv, 4)[0][0]], [round(float(v), 6) for v in layout_detail(inv, 4)[1][0]]
        ([1.0], [1.0])
    """
    orig = inv.original.double()
    h, w = orig.shape[-2:]
    k = max(1, min(h, w) // cells)

    def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = F.avg_pool2d(x, k, k, ceil_mode=True)
        up = F.interpolate(low, size=(h, w), mode="nearest")
        return low, x - up

    lo0, hi0 = split(orig)
    coarse, fine = [], []
    for j in range(len(inv.layers)):
        lo, hi = split(inv.images[:, j].double())
        coarse.append(_corr(lo, lo0))
        fine.append(_corr(hi, hi0))
    return torch.stack(coarse, 1).float(), torch.stack(fine, 1).float()


def inversion_table(inv: Inversion) -> Table:
    """Per layer (medians over the images inverted): the TV weight, the normalised feature error, the pixel
    correlation with the original, and its layout (coarse) and detail (fine) parts.

    Example:
        >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> inv = Inversion(["c1"], x[:, None].clone(), x, torch.tensor([[0.01]]), torch.ones(1, 1), [1.0], 1)
        >>> inversion_table(inv).rows
        [['c1', 1.0, 0.01, 1.0, 1.0, 1.0]]
    """
    coarse, fine = layout_detail(inv)
    rows = []
    for j, layer in enumerate(inv.layers):
        med = [float(np.median(v[:, j].numpy())) for v in (inv.feature_error, inv.pixel_correlation, coarse, fine)]
        rows.append([layer, inv.lambda_tv[j], round(med[0], 4), round(med[1], 3), round(med[2], 3), round(med[3], 3)])
    return Table(["layer", "lambda_tv", "feature error", "pixel correlation", "layout (coarse) r", "detail (fine) r"],
                 rows, f"Inversion of {len(inv.original)} image(s), {inv.steps} steps: medians over the images")


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    rx = np.argsort(np.argsort(np.asarray(x, dtype=float)))
    ry = np.argsort(np.argsort(np.asarray(y, dtype=float)))
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def inversion_claims(inv: Inversion) -> list[Claim]:
    """Mahendran & Vedaldi's readings of their Fig. 6 beside this inversion (read from :func:`inversion_table`).

    * the error *grows with depth*: the rank correlation (Spearman) of the median feature error with the
      layer's depth is positive and the deepest layer's error exceeds the first's;
    * the lowest layer keeps the image *nearly exactly*: its pixel correlation is at least 0.9;
    * higher layers *keep the layout and lose the detail*: at the deepest conv stage and every dense layer the
      layout correlation is at least 0.5 and above the detail correlation, and the detail correlation is
      below the first layer's.

    Example:
        >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> blur = F.avg_pool2d(x, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
        >>> inv = Inversion(["c1", "fc6"], torch.stack([x, blur], 1), x, torch.tensor([[0.01, 0.5]]),
        ...                 torch.tensor([[1.0, 0.8]]), [1.0, 100.0], 1)
        >>> [c.verdict for c in inversion_claims(inv)]
        ['supported', 'supported', 'supported']
    """
    t = inversion_table(inv)
    layers, err = t.column("layer"), t.column("feature error")
    corr, coarse, fine = t.column("pixel correlation"), t.column("layout (coarse) r"), t.column("detail (fine) r")
    rho = _spearman(range(len(err)), err)
    grows = None if len(err) < 2 or math.isnan(rho) else (rho > 0 and err[-1] > err[0])
    high = [j for j, layer in enumerate(layers) if layer.startswith("fc")]
    convs = [j for j, layer in enumerate(layers) if not layer.startswith("fc")]
    if convs and len(convs) > 1:
        high = [convs[-1]] + high
    keeps = (all(coarse[j] >= 0.5 and coarse[j] > fine[j] and fine[j] < fine[0] for j in high)
             if high and len(layers) > 1 else None)
    return [
        Claim.judge(INV, "the reconstruction error grows with depth",
                    "median feature error " + ", ".join(f"{a} {number(e)}" for a, e in zip(layers, err))
                    + f"; rank correlation with depth {number(rho, 2)}", grows),
        Claim.judge(INV, "the lowest layer keeps the image nearly exactly (pixel correlation at least 0.9)",
                    f"{layers[0]}: pixel correlation {number(corr[0])}", corr[0] >= 0.9),
        Claim.judge(INV, "higher layers keep the layout (coarse r at least 0.5, above the detail) and lose the "
                         "detail (fine r below the first layer's)",
                    f"layout / detail r: {layers[0]} {number(coarse[0], 2)} / {number(fine[0], 2)}; "
                    + ", ".join(f"{layers[j]} {number(coarse[j], 2)} / {number(fine[j], 2)}" for j in high), keeps),
    ]


def plot_inversion(inv: Inversion, *, image: int = 0, per_row: int = 5, size: float = 1.35) -> Figure:
    """Mahendran & Vedaldi Fig. 6: the original, then the reconstruction from each layer, wrapped into rows;
    each title gives the layer, its feature error and its pixel correlation (fixed grey range 0..1).

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> inv = Inversion(["c1", "c2"], torch.stack([x, x], 1), x, torch.zeros(1, 2), torch.ones(1, 2), [1.0, 1.0], 1)
        >>> len(plot_inversion(inv).axes)
        5
    """
    n = len(inv.layers) + 1
    cols = min(per_row, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.2, (size + 0.35) * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    orig = inv.original_image(image)
    axes[0, 0].imshow(orig, cmap=_grey(orig), vmin=0, vmax=1)
    axes[0, 0].set_title("original", fontsize=8, pad=2)
    for j, layer in enumerate(inv.layers, start=1):
        ax = axes.flat[j]
        img = inv.image(layer, image)
        ax.imshow(img, cmap=_grey(img), vmin=0, vmax=1)
        ax.set_title(f"{layer}: err {inv.error(layer, image):.2f}\nr {inv.correlation(layer, image):.2f}", fontsize=8,
                     pad=2)
    fig.suptitle(f"Reconstructions from each layer ({inv.steps} steps)", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.2)
    return fig


def plot_inversion_curves(inv: Inversion) -> Figure:
    """Per layer, over the images inverted (medians, with each image as a dot): the normalised feature error
    (left) and the pixel, layout and detail correlations (right), on fixed axes (0..1.2 and -1..1).

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> inv = Inversion(["c1", "c2"], torch.stack([x, x], 1), x, torch.zeros(1, 2), torch.ones(1, 2), [1.0, 1.0], 1)
        >>> len(plot_inversion_curves(inv).axes)
        2
    """
    coarse, fine = layout_detail(inv)
    x = np.arange(len(inv.layers))
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.4, 2.6))
    err = inv.feature_error.numpy()
    for row in err:
        a.plot(x, row, ".", color="0.6", ms=4)
    a.plot(x, np.median(err, 0), "-o", color="C3", ms=4, label="median")
    a.set_ylim(0, max(1.2, float(err.max()) * 1.05))
    a.set_ylabel("‖Φ(x) − Φ₀‖² / ‖Φ₀‖²", fontsize=8)
    a.set_title("feature-space error", fontsize=9)
    for values, name, colour in ((inv.pixel_correlation, "pixels", "C0"), (coarse, "layout (coarse)", "C2"),
                                 (fine, "detail (fine)", "C1")):
        b.plot(x, np.median(values.numpy(), 0), "-o", color=colour, ms=4, label=name)
    b.axhline(0, color="0.7", lw=0.8)
    b.set_ylim(-1, 1)
    b.set_title("correlation with the original", fontsize=9)
    b.legend(fontsize=8, frameon=False, loc="lower left")
    for ax in (a, b):
        ax.set_xticks(x)
        ax.set_xticklabels(inv.layers, fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- dissection


class _Carried(ConceptSet):
    """The Bundled sample's concepts carried into another net's input (its own resizing and cropping)."""

    def __init__(self, base: ConceptSet, net: Any) -> None:
        self.base, self.net = base, net
        side = int(net.input_size)
        super().__init__(base.concepts, (side, side), len(base))
        self._cache: dict[int, torch.Tensor] = {}

    def masks(self, start: int, stop: int) -> torch.Tensor:
        sample = self.base.sample  # type: ignore[attr-defined]
        n_cls = len(self.base.classes)  # type: ignore[attr-defined]
        where = self.base._bg_index  # type: ignore[attr-defined]
        out = torch.zeros(stop - start, len(self.concepts), *self.size, dtype=torch.bool)
        for b, i in enumerate(range(start, stop)):
            if i not in self._cache:
                self._cache[i] = transform_mask(self.net, np.array(sample.masks[i], dtype=bool))
            obj = self._cache[i]
            out[b, int(sample.labels[i])] = obj
            out[b, n_cls + int(where[i])] = ~obj
        return out

    def data(self, net: Any) -> Any:
        return self.base.data(net)


def chapter_concepts(net: Any, limit: int | None = None) -> ConceptSet:
    """The concepts the chapter dissects against: Broden (Bau's) for a colour net when ``VIZLIB_BRODEN``
    points at it; otherwise the Bundled sample's exact concepts (each garment class's mask, each background
    photo's region), carried into the net's input by its own preprocessing when its size differs.

    Args:
        net: a :class:`~vizlib.Net`.
        limit: the first this many images (default all: 1,500 for the Bundled sample).

    Example:
        >>> import vizlib as vl
        >>> cs = chapter_concepts(vl.load("alexnet", "bundled"), 20)
        >>> len(cs), cs.size, cs.categories
        (20, (64, 64), ['object', 'background'])
    """
    import os

    from ..core.composed import bundled_sample

    if net.in_channels == 3 and os.environ.get("VIZLIB_BRODEN"):
        b = Broden(size=int(net.input_size))
        if limit is not None and limit < len(b):
            b.rows = b.rows[:limit]
            b._n = limit
        return b
    sample = bundled_sample()
    if limit is not None and limit < len(sample):
        sample = sample.subset(slice(0, limit))
    base = bundled_concepts(sample)
    if tuple(base.size) == (int(net.input_size), int(net.input_size)):
        return base
    return _Carried(base, net)


def dissection_table(trained: Dissection, untrained: Dissection | None = None) -> Table:
    """Per layer: units, detectors, unique concepts, and per category; with an untrained copy's detectors and
    unique concepts beside them.

    Example:
        >>> from vizlib.methods.dissection import Concept, LayerDissection
        >>> L = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.0], [0.0, 0.03]]))
        >>> d = Dissection([Concept("a", "object"), Concept("b", "background")], {"c1": L}, 10)
        >>> dissection_table(d, d).rows
        [['c1', 2, 1, 1, 1, 1, 0, 0, 1, 1]]
    """
    cats = trained.categories
    rows = []
    for layer in trained.layers:
        c = trained.counts(layer)
        row = [layer, c["units"], c["detectors"], c["unique"]] + [v for cat in cats for v in (c[cat], c[f"{cat} unique"])]
        if untrained is not None:
            u = untrained.counts(layer)
            row += [u["detectors"], u["unique"]]
        rows.append(row)
    head = ["layer", "units", "detectors", "unique"] + [h for cat in cats for h in (cat, f"{cat} unique")]
    if untrained is not None:
        head += ["untrained: detectors", "untrained: unique"]
    return Table(head, rows, f"Network dissection over {trained.n_images} images: top {trained.quantile:.1%} "
                             f"threshold, detector when IoU > {trained.iou_threshold}")


def dissection_claims(trained: Dissection, untrained: Dissection | None, *, is_trained: bool = True) -> list[Claim]:
    """Bau et al.'s two readings beside this dissection.

    * *more detectors on the trained net than on the same net untrained*: the detectors over all the layers
      dissected, trained against untrained (not testable when the net shown is itself untrained, or without
      the untrained dissection);
    * *detectors grow with depth*: the unique concepts detected by the deepest layer exceed the first's (Bau
      count unique detectors per layer).

    Example:
        >>> from vizlib.methods.dissection import Concept, LayerDissection
        >>> cs = [Concept("a", "object"), Concept("b", "object")]
        >>> lo = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.0], [0.6, 0.0]]))
        >>> hi = LayerDissection("c2", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.0], [0.0, 0.6]]))
        >>> flat = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.zeros(2, 2))
        >>> t = Dissection(cs, {"c1": lo, "c2": hi}, 4)
        >>> u = Dissection(cs, {"c1": flat, "c2": flat}, 4)
        >>> [c.verdict for c in dissection_claims(t, u)]
        ['supported', 'supported']
    """
    layers = list(trained.layers)
    det = {layer: trained.counts(layer)["detectors"] for layer in layers}
    uniq = {layer: trained.counts(layer)["unique"] for layer in layers}
    total = sum(det.values())
    claims = []
    if untrained is not None:
        u_total = sum(untrained.counts(layer)["detectors"] for layer in layers)
        per = ", ".join(f"{layer} {det[layer]} vs {untrained.counts(layer)['detectors']}" for layer in layers)
        measured = (f"detectors, trained vs untrained: {total} vs {u_total} ({per})"
                    + ("" if is_trained else "; the net shown is itself untrained (Random set)"))
        claims.append(Claim.judge(DISS, "a trained net has more detectors than the same net untrained", measured,
                                  total > u_total if is_trained else None))
    else:
        claims.append(Claim.judge(DISS, "a trained net has more detectors than the same net untrained",
                                  "no untrained copy dissected", None))
    measured = ("unique concepts " + ", ".join(f"{layer} {uniq[layer]}" for layer in layers)
                + "; detectors " + ", ".join(f"{layer} {det[layer]}/{trained.counts(layer)['units']}" for layer in layers))
    claims.append(Claim.judge(DISS, "detectors grow with depth (more unique concepts in the deepest layer than in "
                                    "the first)", measured, uniq[layers[-1]] > uniq[layers[0]] if len(layers) > 1 else None))
    return claims


def plot_dissection(trained: Dissection, untrained: Dissection | None = None) -> Figure:
    """Per layer: the share of units that are detectors, trained and untrained (left), and the unique concepts
    detected by category (right, stacked; the untrained copy's total as a black tick). Fixed axes: shares
    0..1; concepts 0 to the number of concepts.

    Example:
        >>> from vizlib.methods.dissection import Concept, LayerDissection
        >>> L = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.0], [0.0, 0.03]]))
        >>> d = Dissection([Concept("a", "object"), Concept("b", "background")], {"c1": L}, 10)
        >>> len(plot_dissection(d, d).axes)
        2
    """
    layers = list(trained.layers)
    x = np.arange(len(layers))
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.4, 2.7))
    share = [trained.counts(layer)["detectors"] / max(1, trained.counts(layer)["units"]) for layer in layers]
    w = 0.38 if untrained is not None else 0.6
    a.bar(x - (w / 2 if untrained is not None else 0), share, w, color="C0", label="trained" if untrained else None)
    if untrained is not None:
        ushare = [untrained.counts(layer)["detectors"] / max(1, untrained.counts(layer)["units"]) for layer in layers]
        a.bar(x + w / 2, ushare, w, color="0.65", label="untrained")
        a.legend(fontsize=8, frameon=False)
    a.set_ylim(0, 1)
    a.set_ylabel("share of units", fontsize=8)
    a.set_title("units that detect a concept (IoU > %.2f)" % trained.iou_threshold, fontsize=9)
    bottom = np.zeros(len(layers))
    for k, cat in enumerate(trained.categories):
        v = np.array([trained.counts(layer)[f"{cat} unique"] for layer in layers], dtype=float)
        b.bar(x, v, 0.6, bottom=bottom, color=f"C{k + 1}", label=cat)
        bottom += v
    if untrained is not None:
        uu = [untrained.counts(layer)["unique"] for layer in layers]
        b.scatter(x, uu, marker="_", s=300, color="black", label="untrained (all)", zorder=3)
    b.set_ylim(0, len(trained.concepts))
    b.set_title("unique concepts detected", fontsize=9)
    b.legend(fontsize=8, frameon=False, loc="upper left")
    for ax in (a, b):
        ax.set_xticks(x)
        ax.set_xticklabels(layers, fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def unit_examples(concepts: ConceptSet, concept: int, n: int = 4, limit: int = 300) -> list[int]:
    """Up to ``n`` images (among the first ``limit``) on which ``concept`` covers the most pixels.

    Example:
        >>> cs = chapter_concepts(__import__("vizlib").load("alexnet", "bundled"), 40)
        >>> len(unit_examples(cs, 1, 3, 40))
        3
    """
    stop = min(limit, len(concepts))
    m = torch.cat([concepts.masks(s, min(s + 50, stop))[:, concept].flatten(1).sum(1) for s in range(0, stop, 50)])
    order = torch.argsort(m, descending=True, stable=True)
    return [int(i) for i in order[:n] if m[i] > 0]


def plot_unit_masks(d: Dissection, net: Any, layer: str, concepts: ConceptSet, data: Any, *,
                    units: Sequence[int] | None = None, n_units: int = 4, n_images: int = 4,
                    size: float = 0.95) -> Figure:
    """The top units of a layer (highest IoU), each on the images where its concept is largest: the unit's
    thresholded mask drawn in red over the image, the concept's region outlined in yellow.

    Args:
        d: the dissection; net: the net dissected; layer: one of its layers.
        concepts: the concepts dissected against; data: the images, in the concepts' order.
        units: the units to show (default the ``n_units`` with the highest IoU).
        n_images: images per unit.
        size: inches per image.

    Example:
        >>> fig = plot_unit_masks(d, net, "c5", concepts, concepts.data(net))   # doctest: +SKIP
    """
    top = d.top_units(layer, len(d.layers[layer].thresholds))
    if units is not None:
        info = {k: (name, iou) for k, name, iou in top}
        chosen = [(int(u), *info[int(u)]) for u in units]
    else:
        chosen = top[:n_units]
    cols = n_images
    rows = len(chosen)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 1.4, size * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    best = d.layers[layer].best_concept
    for r, (k, name, iou) in enumerate(chosen):
        idx = unit_examples(concepts, int(best[k]), n_images)
        if not idx:
            continue
        x = torch.stack([data[i][0] for i in idx])
        masks = d.unit_masks(net, layer, k, x)
        regions = torch.stack([concepts.masks(i, i + 1)[0, int(best[k])] for i in idx])
        for c, i in enumerate(idx):
            ax = axes[r, c]
            img = to_display(x[c], getattr(net, "mean", None), getattr(net, "std", None))
            ax.imshow(img, cmap=_grey(img), vmin=0, vmax=1)
            over = np.zeros(masks[c].shape + (4,))
            over[masks[c].numpy()] = (1.0, 0.1, 0.1, 0.55)
            ax.imshow(over)
            if regions[c].any() and not regions[c].all():
                ax.contour(regions[c].numpy().astype(float), levels=[0.5], colors="yellow", linewidths=0.7)
        label = name if len(name) <= 14 else name[:13] + "…"
        axes[r, 0].text(-0.08, 0.5, f"unit {k}\n{label}\nIoU {iou:.3f}", transform=axes[r, 0].transAxes,
                        ha="right", va="center", fontsize=8)
    fig.suptitle(f"{layer}: top units (red: above the unit's threshold; yellow: the concept's region)", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.3, w_pad=0.2, rect=(0.14, 0, 1, 1))
    return fig


# --------------------------------------------------------------------------- explorer


def family_explorer(
    net: Any,
    data: Any,
    *,
    inversion: Inversion | None = None,
    dissection: Dissection | None = None,
    concepts: ConceptSet | None = None,
    tops: dict[str, TopActivations] | None = None,
    maximised: dict[tuple[str, int, str], Maximisation] | None = None,
    layers: Sequence[str] | None = None,
    regularisers: Sequence[str | tuple[str, ...]] = COMPARED,
    regulariser: str = "fourier+transforms",
    steps: int = 128,
) -> Any:
    """Pick a layer, a unit and a regulariser: the unit's synthesized image beside its top-9 patches and
    projections; the layer's inversion; the unit's dissection masks.

    Calls the functions the chapter calls (:func:`vizlib.maximise`, :func:`plot_beside_top9`,
    :func:`plot_inversion`, :func:`plot_unit_masks`); syntheses and top-9 collections are cached. The units
    offered are the maps that fire on the data; the unit is kept across a change of layer when the new layer
    has it, otherwise the first is shown and the note says so.

    Args:
        net: a :class:`~vizlib.Net`; data: the images mined (the chapter's data).
        inversion: the chapter's inversion (its layers are shown when picked).
        dissection: the chapter's dissection, with ``concepts`` (the set it was made against).
        tops: layer -> :class:`~vizlib.methods.topk.TopActivations` (k = 9), mined on ``data``; mined when missing.
        maximised: ``(layer, unit, regulariser) -> Maximisation`` of one unit already made (reused).
        layers: the layers offered (default :func:`stage_layers`).
        regularisers: the regulariser choices; regulariser: the first one.
        steps: gradient-ascent steps of a new synthesis.

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer`; its first state is drawn at once.

    Example:
        >>> family_explorer(net, data, inversion=inv, dissection=d, concepts=cs)   # doctest: +SKIP
    """
    import ipywidgets as W
    from IPython.display import display

    from .widgets import Explorer, Words, show_figure

    names = list(layers or stage_layers(net))
    tops = dict(tops or {})
    cache: dict[tuple[str, int, str], Maximisation] = dict(maximised or {})
    collected: dict[tuple[str, int], TopActivations] = {}

    def top(layer: str) -> TopActivations:
        if layer not in tops:
            tops[layer] = top_activations(net, layer, data, k=min(9, len(data)), progress=False)
        return tops[layer]

    def units(layer: str) -> list[int]:
        return torch.nonzero(top(layer).values[:, 0] > 0).flatten().tolist()

    pick_layer = W.Dropdown(options=names, value=names[-1], description="layer")
    first = units(names[-1])
    pick_unit = W.Dropdown(options=first, value=first[0] if first else None, description="unit")
    regs = [r if isinstance(r, str) else "+".join(r) for r in regularisers]
    pick_reg = W.Dropdown(options=[(_SHORT.get(r, r), r) for r in regs], value=regulariser if regulariser in regs
                          else regs[0], description="regulariser")

    def update(change: dict | None) -> str | None:
        if change is None or change["owner"] is not pick_layer:
            return None
        wanted = pick_unit.value
        offered = units(pick_layer.value)
        pick_unit.options = offered
        if wanted in offered:
            pick_unit.value = wanted
            return None
        if not offered:
            return f"no map of {pick_layer.value} fires on these images."
        pick_unit.value = offered[0]
        return (f"map {wanted} of {pick_layer.value} does not fire on these images or does not exist: "
                f"showing map {offered[0]}.")

    def busy() -> str:
        key = (pick_layer.value, pick_unit.value, pick_reg.value)
        if key in cache:
            return "⏳ Drawing…"
        return (f"⏳ Synthesizing an image for {key[0]} map {key[1]} ({steps} steps, {_SHORT.get(key[2], key[2])}); "
                "the view below is the previous choice until the new one is ready.")

    def content() -> None:
        layer, unit, reg = pick_layer.value, pick_unit.value, pick_reg.value
        if unit is None:
            display(Words(f"No map of {layer} fires on these images: nothing to synthesize."))
            return
        key = (layer, int(unit), reg)
        t = top(layer)
        if key not in cache:
            cache[key] = maximise(net, layer, [int(unit)], regulariser=tuple(reg.split("+")), steps=steps,
                                  reference=t)
        am = cache[key]
        if (layer, int(unit)) not in collected:
            collected[(layer, int(unit))] = t.collect(net, data, [int(unit)], progress=False)
        ratio = float(am.ratio[0])
        display(Words(f"{layer} map {unit}: the synthesized image drives it to {float(am.activation[0]):.3g}, "
                      f"{ratio:.2f} times its largest activation over {t.n_images} images "
                      f"({'reached' if bool(am.reached[0]) else 'not reached'})."))
        show_figure(plot_beside_top9(am, collected[(layer, int(unit))], per_row=1))
        if inversion is not None and layer in inversion.layers:
            display(Words(f"Inversion from {layer}: feature error {inversion.error(layer):.3f}, pixel correlation "
                          f"{inversion.correlation(layer):.3f}."))
            show_figure(_inversion_pair(inversion, layer))
        elif inversion is not None:
            display(Words(f"{layer} was not inverted (inverted: {', '.join(inversion.layers)})."))
        if dissection is not None and concepts is not None and layer in dissection.layers:
            ld = dissection.layers[layer]
            c = dissection.concepts[int(ld.best_concept[int(unit)])]
            display(Words(f"Dissection: map {unit}'s best concept is {c.name} ({c.category}), IoU "
                          f"{float(ld.best_iou[int(unit)]):.3f}: "
                          f"{'a detector' if bool(ld.detectors[int(unit)]) else 'not a detector'} "
                          f"(bar {dissection.iou_threshold})."))
            show_figure(plot_unit_masks(dissection, net, layer, concepts, concepts.data(net), units=[int(unit)]))
        elif dissection is not None:
            display(Words(f"{layer} was not dissected (dissected: {', '.join(dissection.layers)})."))

    return Explorer([[pick_layer, pick_unit, pick_reg]], content, update=update, busy=busy)


def inversion_static(inv: Inversion, image: int = 0) -> Any:
    """Kernel-free: layer by layer, the original beside its reconstruction from that layer, behind one slider
    (the explorer's inversion view, for the rendered book).

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> inv = Inversion(["c1", "c2"], torch.stack([x, x], 1), x, torch.zeros(1, 2), torch.ones(1, 2), [1.0, 1.0], 1)
        >>> len(inversion_static(inv))
        2
    """
    from .widgets import static_explorer

    return static_explorer(list(inv.layers), lambda layer: _inversion_pair(inv, layer, image),
                           labels=[f"{layer}: feature error {inv.error(layer, image):.3f}, pixel correlation "
                                   f"{inv.correlation(layer, image):.3f}" for layer in inv.layers],
                           name="inverted from", dpi=100)


def _inversion_pair(inv: Inversion, layer: str, image: int = 0) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(2.8, 1.6))
    for ax, img, title in ((axes[0], inv.original_image(image), "original"),
                           (axes[1], inv.image(layer, image), f"from {layer}")):
        ax.imshow(img, cmap=_grey(img), vmin=0, vmax=1)
        ax.set_title(title, fontsize=8, pad=2)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig
