"""res.plot() (adelia.plotting) on the headless Agg backend.

Checks: one figure per group, exactly one panel per fixed effect / hyperparameter / f()
term, the plotted curves are the result's own marginals and summaries, the figures render,
and an unknown group is refused with the valid choices listed.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import adelia  # noqa: E402


@pytest.fixture(scope="module")
def fit():
    rng = np.random.default_rng(3)
    n = 60
    t = np.arange(1, n + 1)
    g = rng.integers(1, 7, size=n)
    x = rng.normal(size=n)
    y = 0.5 + 0.8 * x + np.sin(t / 9.0) + 0.5 * rng.normal(size=6)[g - 1] + 0.3 * rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "t": t, "g": g})
    return adelia.inla("y ~ 1 + x + f(t, model='rw1') + f(g, model='iid')", df, control_predictor={"compute": True})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_has_one_panel_per_quantity_and_renders(fit):
    figs = fit.plot()
    assert set(figs) == {"fixed", "hyperpar", "random"}
    assert len(figs["fixed"].axes) == len(fit.summary_fixed) == 2
    assert len(figs["hyperpar"].axes) == len(fit.summary_hyperpar) == 3
    assert len(figs["random"].axes) == len(fit.summary_random) == 2
    for fig in figs.values():
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panels_show_the_results_own_marginals_and_bands(fit):
    figs = fit.plot()
    for ax, (name, m) in zip(figs["fixed"].axes, fit.marginals_fixed.items()):
        assert ax.get_title() == name
        line = ax.get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), m["x"].values)
        np.testing.assert_allclose(line.get_ydata(), m.values)
    assert [ax.get_title() for ax in figs["hyperpar"].axes] == list(fit.summary_hyperpar.index)
    for ax, (name, table) in zip(figs["random"].axes, fit.summary_random.items()):
        assert ax.get_title() == name
        mean_line = ax.get_lines()[0]
        np.testing.assert_allclose(mean_line.get_xdata(), table["ID"].to_numpy(float))
        np.testing.assert_allclose(mean_line.get_ydata(), table["mean"].to_numpy())
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        assert band.min() == pytest.approx(table["0.025quant"].min())
        assert band.max() == pytest.approx(table["0.975quant"].max())


def test_plot_selected_groups_and_errors(fit):
    figs = fit.plot(which="predictor")
    assert list(figs) == ["predictor"] and len(figs["predictor"].axes) == 1
    line = figs["predictor"].axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), fit.summary_linear_predictor["mean"].to_numpy())
    with pytest.raises(ValueError, match="fixed, hyperpar, predictor, random"):
        fit.plot(which=("fixed", "latent"))


def test_plot_skips_empty_groups():
    df = pd.DataFrame({"y": np.linspace(0.0, 1.0, 12) + 0.1 * np.cos(np.arange(12))})
    res = adelia.inla("y ~ 1", df)
    figs = res.plot()
    assert set(figs) == {"fixed", "hyperpar"}
    assert len(figs["fixed"].axes) == 1 and len(figs["hyperpar"].axes) == 1
