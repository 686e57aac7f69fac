"""``res.plot()``: the posterior at a glance, as R-INLA's ``plot(result)`` shows it.

One matplotlib figure per group of quantities, one panel per quantity:

* ``"fixed"`` — the posterior density of each fixed effect (``marginals_fixed``), with the
  posterior mean and the 95% interval marked;
* ``"hyperpar"`` — the posterior density of each hyperparameter on the user scale
  (``marginals_hyperpar``, smoothed as ``smarginal`` does);
* ``"random"`` — for each f() term the posterior mean against ``ID`` with the band between
  the 0.025 and 0.975 quantiles (``summary_random``);
* ``"predictor"`` (on request) — the linear predictor's mean and 95% band per row.

Figures are built with ``matplotlib.pyplot`` (so that ``plt.show()`` and notebooks display
them) and work with any backend, including the headless Agg backend.

Example:
    The fit that the examples of the functions below use:

    >>> seeds = adelia.datasets.load("Seeds")
    >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
    ...                   Ntrials="n", control_predictor={"compute": True})
    >>> figs = res.plot()   # the same as adelia.plotting.plot_result(res)
    >>> sorted(figs)
    ['fixed', 'hyperpar', 'random']
    >>> figs["fixed"].savefig("fixed.png")   # writes a file  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import unknown_choice

GROUPS = ("fixed", "hyperpar", "random", "predictor")
DEFAULT_GROUPS = ("fixed", "hyperpar", "random")


def _grid(n: int, ncols: int, title: str, panel_size=(3.6, 2.8)):
    """A figure with exactly n panels (ncols wide); unused grid cells are removed."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    fig.suptitle(title)
    return fig, flat[:n]


def _density_panel(ax, x, y, name, mean=None, lo=None, hi=None):
    ax.plot(x, y, color="C0")
    if lo is not None and hi is not None:
        inside = (x >= lo) & (x <= hi)
        ax.fill_between(x[inside], y[inside], color="C0", alpha=0.2, linewidth=0)
    if mean is not None:
        ax.axvline(mean, color="C1", linewidth=1)
    ax.set_title(name, fontsize="medium")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)


def plot_fixed(result, ncols: int = 3):
    """Densities of the fixed effects; None when the model has none.

    Example:
        >>> fig = plot_fixed(res)
        >>> [ax.get_title() for ax in fig.axes]
        ['(Intercept)', 'x1', 'x2']
    """
    margs = result.marginals_fixed
    if not margs:
        return None
    table = result.summary_fixed
    fig, axes = _grid(len(margs), ncols, "Posterior densities of the fixed effects")
    for ax, (name, m) in zip(axes, margs.items()):
        row = table.loc[name]
        _density_panel(ax, m["x"].values, m.values, name, row["mean"], row.get("0.025quant"), row.get("0.975quant"))
    fig.tight_layout()
    return fig


def plot_hyperpar(result, ncols: int = 3):
    """Densities of the hyperparameters on the user scale; None without hyperparameters.

    Example:
        >>> fig = plot_hyperpar(res)
        >>> [ax.get_title() for ax in fig.axes]
        ['Precision for plate']
    """
    from .marginals import qmarginal, smarginal

    margs = result.marginals_hyperpar
    if not margs:
        return None
    table = result.summary_hyperpar
    fig, axes = _grid(len(margs), ncols, "Posterior densities of the hyperparameters")
    for ax, (name, m) in zip(axes, margs.items()):
        try:
            sm = smarginal(m)
            x, y = sm["x"].values, sm.values
        except Exception:  # a degenerate marginal: show the points as given
            x, y = m["x"].values, m.values
        row = table.loc[name]
        _density_panel(ax, x, y, name, row["mean"], row.get("0.025quant"), row.get("0.975quant"))
        try:  # user-scale marginals have long tails: show the central 99.9%
            lo, hi = qmarginal([0.0005, 0.9995], m)
            ax.set_xlim(lo, hi)
        except Exception:
            pass
    fig.tight_layout()
    return fig


def _band_panel(ax, idx, table, name, xlabel):
    mean = table["mean"].to_numpy()
    lo = table["0.025quant"].to_numpy() if "0.025quant" in table else None
    hi = table["0.975quant"].to_numpy() if "0.975quant" in table else None
    if lo is not None and hi is not None:
        ax.fill_between(idx, lo, hi, color="C0", alpha=0.25, linewidth=0, label="95% interval")
    ax.plot(idx, mean, color="C0", marker="." if idx.size <= 60 else None, label="mean")
    ax.set_title(name, fontsize="medium")
    ax.set_xlabel(xlabel)


def plot_random(result, ncols: int = 2):
    """Mean and 95% band against ID for each f() term; None without f() terms.

    Example:
        >>> fig = plot_random(res)
        >>> [ax.get_title() for ax in fig.axes]
        ['plate']
    """
    tables = result.summary_random
    if not tables:
        return None
    fig, axes = _grid(len(tables), ncols, "Random effects: posterior mean and 95% interval", panel_size=(5.0, 3.0))
    for ax, (name, df) in zip(axes, tables.items()):
        ids = df["ID"].to_numpy()
        # bym/bym2 tables hold two parts with the same IDs, group/replicate repeat them too:
        # then plot against the row position
        by_id = np.issubdtype(np.asarray(ids).dtype, np.number) and np.unique(ids).size == ids.size
        idx = ids.astype(float) if by_id else np.arange(1, len(df) + 1, dtype=float)
        _band_panel(ax, idx, df, name, "ID" if by_id else "row")
    fig.tight_layout()
    return fig


def plot_predictor(result):
    """The linear predictor's mean and 95% band per row; None when it was not computed.

    Example:
        >>> fig = plot_predictor(res)   # the fit has control_predictor={"compute": True}
        >>> fig.axes[0].get_xlabel()
        'observation'
    """
    table = result.summary_linear_predictor
    if table is None or len(table) == 0:
        return None
    fig, axes = _grid(1, 1, "Linear predictor: posterior mean and 95% interval", panel_size=(7.0, 3.2))
    _band_panel(axes[0], np.arange(1, len(table) + 1, dtype=float), table, "Predictor", "observation")
    fig.tight_layout()
    return fig


def plot_result(result, which: Sequence[str] | str = DEFAULT_GROUPS, show: bool = False) -> dict:
    """Figures for the groups in ``which`` (see the module docstring).

    Args:
        result: an :class:`adelia.results.InlaResult`.
        which: any of "fixed", "hyperpar", "random", "predictor" (or one of them as a string).
        show: call ``matplotlib.pyplot.show()`` at the end.

    Returns:
        A dict group -> matplotlib Figure, for the groups that have something to plot.

    Example:
        >>> figs = plot_result(res, which=("fixed", "predictor"))
        >>> sorted(figs)
        ['fixed', 'predictor']
    """
    groups = (which,) if isinstance(which, str) else tuple(which)
    for g in groups:
        if g not in GROUPS:
            raise ValueError(unknown_choice("plot group", g, GROUPS))
    makers = {"fixed": plot_fixed, "hyperpar": plot_hyperpar, "random": plot_random, "predictor": plot_predictor}
    figs = {}
    for g in groups:
        fig = makers[g](result)
        if fig is not None:
            figs[g] = fig
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return figs


def choropleth(rings, values, ax=None, cmap: str = "viridis", vmin=None, vmax=None, norm=None,
               colorbar: bool | str = True, edgecolor="0.4", linewidth: float = 0.3, title: str | None = None):
    """A choropleth map: each area filled with the colour of its value (R users draw these
    with ``spplot`` or ``ggplot2::geom_sf``; no GIS library is needed here).

    Args:
        rings: per area, a list of rings (``(m, 2)`` arrays of x, y), as
            :func:`adelia.datasets.polygons` returns them.
        values: one number per area, in the same order (a posterior mean, an exceedance
            probability, ...); NaN areas are drawn grey.
        ax: a matplotlib Axes to draw on (default: a new figure).
        cmap, vmin, vmax, norm: as in matplotlib's ``PolyCollection``.
        colorbar: draw a colour bar; a string is its label.
        edgecolor, linewidth: the area borders.
        title: the panel's title.

    Returns:
        The Axes.

    Raises:
        ValueError: ``values`` has not one entry per area.

    Example:
        >>> from adelia import datasets
        >>> nc = datasets.load("NCSIDS")
        >>> ax = choropleth(datasets.polygons("NCSIDS"), nc["SID74"] / nc["BIR74"], colorbar="SIDS rate")
        >>> len(ax.collections[0].get_paths())   # one polygon per ring: 100 counties, 108 rings
        108
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    values = np.asarray(values, dtype=float).ravel()
    if values.size != len(rings):
        raise ValueError(f"values: {values.size} numbers for {len(rings)} areas; give one value per area")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    polys = [np.asarray(r, dtype=float) for area in rings for r in area]
    area_values = np.concatenate([np.full(len(area), v) for area, v in zip(rings, values)])
    cm = plt.get_cmap(cmap).with_extremes(bad="0.85")
    coll = PolyCollection(polys, array=np.ma.masked_invalid(area_values), cmap=cm, norm=norm,
                          edgecolors=edgecolor, linewidths=linewidth)
    if norm is None:
        coll.set_clim(vmin, vmax)
    ax.add_collection(coll)
    allxy = np.concatenate(polys)
    ax.set_xlim(allxy[:, 0].min(), allxy[:, 0].max())
    ax.set_ylim(allxy[:, 1].min(), allxy[:, 1].max())
    ax.set_aspect(1.0 / np.cos(np.deg2rad(allxy[:, 1].mean())) if np.abs(allxy).max() <= 180 else "equal")
    ax.set_xticks([]); ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(coll, ax=ax, shrink=0.7, label=colorbar if isinstance(colorbar, str) else None)
    if title:
        ax.set_title(title)
    return ax
