"""The per-node mixture summaries (quantiles, mode, kld) of :mod:`adelia.inference.summaries`
against straightforward per-node references computed independently: brentq on the mixture cdf,
a dense grid refined by brentq on p', and the 71-point quadrature evaluated directly in extended
precision."""

import numpy as np
import pytest
from scipy import optimize, special

from adelia.inference import summaries as S
from adelia.inference.summaries import Mixture, kld_gaussian_vs

QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def _random_mixtures(rng, n, kind):
    """n Gaussian mixtures of K components: "inla" nearly Gaussian (spread of the means a
    fraction of the scales, as over INLA's design points), "wide" far from Gaussian (skewed,
    often bimodal)."""
    K = int(rng.integers(2, 12))
    w = rng.dirichlet(np.ones(K))
    centre = rng.normal(0.0, 3.0, n)
    base = rng.uniform(0.05, 3.0, n)
    if kind == "inla":
        loc = centre + base * rng.normal(0.0, 0.2, (K, n))
        scale = base * rng.uniform(0.8, 1.25, (K, n))
    else:
        loc = centre + base * rng.normal(0.0, 2.0, (K, n))
        scale = base * rng.uniform(0.3, 1.5, (K, n))
    return Mixture(w, loc, scale)


def _node(mix, i):
    return mix.weights, mix.loc[:, i], mix.scale[:, i]


def _cdf(x, w, loc, scale):
    return float(np.sum(w * special.ndtr((x - loc) / scale)))


def _pdf(x, w, loc, scale):
    x = np.asarray(x, dtype=float)[..., None]
    return np.sum(w * np.exp(-0.5 * ((x - loc) / scale) ** 2) / scale, axis=-1) / np.sqrt(2 * np.pi)


def _dpdf(x, w, loc, scale):
    z = (x - loc) / scale
    return float(np.sum(-w * z * np.exp(-0.5 * z**2) / scale**2))


@pytest.mark.parametrize("kind", ["inla", "wide"])
def test_quantiles_match_brentq_on_the_mixture_cdf(kind):
    rng = np.random.default_rng(11 if kind == "inla" else 12)
    for _ in range(3):
        mix = _random_mixtures(rng, 120, kind)
        out = mix.summary(QUANTILES, method="exact")
        sd = mix.sd()
        for p in QUANTILES:
            got = out[f"{p:g}quant"]
            np.testing.assert_array_equal(got, mix.quantile(p))  # the same kernel either way
            for i in range(mix.n):
                w, loc, scale = _node(mix, i)
                lo, hi = np.min(loc - 12 * scale), np.max(loc + 12 * scale)
                ref = optimize.brentq(lambda x: _cdf(x, w, loc, scale) - p, lo, hi, xtol=1e-15 * sd[i], rtol=1e-15, maxiter=500)
                assert abs(got[i] - ref) <= 1e-8 * sd[i], (kind, p, i, got[i], ref)


def _reference_mode(w, loc, scale, mu, sd):
    """The global maximum of the density: a dense grid, then brentq on p' between the
    neighbours of the best grid point; also the ratio of the second-highest local maximum of
    the grid to the highest (near 1: the mode is ill-posed)."""
    x = mu + sd * np.linspace(-8.0, 8.0, 40001)
    f = _pdf(x, w, loc, scale)
    j = int(np.argmax(f))
    ref = optimize.brentq(lambda t: _dpdf(t, w, loc, scale), x[j - 1], x[j + 1], xtol=1e-15 * sd, rtol=1e-15, maxiter=500)
    peaks = np.flatnonzero((f[1:-1] > f[:-2]) & (f[1:-1] >= f[2:])) + 1
    heights = np.sort(f[peaks])[::-1]
    ratio = heights[1] / heights[0] if heights.size > 1 else 0.0
    return ref, ratio


@pytest.mark.parametrize("kind", ["inla", "wide"])
def test_mode_matches_a_refined_dense_grid(kind):
    """Nearly Gaussian mixtures: the global maximum, always. Far-from-Gaussian ones: always a
    local maximum (p' = 0 to rounding, p'' < 0), and the global one unless a narrow higher peak
    falls between the points of the 33-point start grid (as before the numba kernels: a
    handful of these constructed, strongly bimodal cases; INLA's marginals are concave)."""
    rng = np.random.default_rng(21 if kind == "inla" else 22)
    checked = missed = 0
    for _ in range(3):
        mix = _random_mixtures(rng, 120, kind)
        mode = mix.mode()
        np.testing.assert_array_equal(mode, mix.summary(method="exact")["mode"])
        mu, sd = mix.mean(), mix.sd()
        for i in range(mix.n):
            w, loc, scale = _node(mix, i)
            # a local maximum: the root of p' next to it, by brentq
            h = 1e-3 * np.min(scale)
            d_lo, d_hi = _dpdf(mode[i] - h, w, loc, scale), _dpdf(mode[i] + h, w, loc, scale)
            assert d_lo > 0 > d_hi, (kind, i)
            local = optimize.brentq(lambda t: _dpdf(t, w, loc, scale), mode[i] - h, mode[i] + h, xtol=1e-15 * sd[i], rtol=1e-15)
            assert abs(mode[i] - local) <= 1e-8 * sd[i], (kind, i, mode[i], local)
            ref, ratio = _reference_mode(w, loc, scale, mu[i], sd[i])
            if ratio < 0.999:  # the global maximum well separated from the other modes
                checked += 1
                if abs(mode[i] - ref) > 1e-8 * sd[i]:
                    assert kind == "wide" and _pdf(mode[i], w, loc, scale) < _pdf(ref, w, loc, scale)
                    missed += 1
    assert checked > 300
    assert missed <= 0.03 * checked


def _kld_direct(mix, gauss, i):
    """The 71-point quadrature of (p − q)·log(p/q) on mean ± 7 sd, each density evaluated
    directly (exp per point and component) in extended precision."""
    L = np.longdouble
    mu, sd = L(mix.mean()[i]), L(mix.sd()[i])
    z = np.linspace(-7, 7, 71).astype(L)
    x = mu + sd * z

    def dens(m, k):
        loc, scale = m.loc[:, i].astype(L), m.scale[:, i].astype(L)
        t = (x[:, None] - loc) / scale
        return np.sum(m.weights.astype(L) * np.exp(-t * t / 2) / scale, axis=1) / np.sqrt(L(2) * L(np.pi))

    p = np.maximum(dens(mix, 0), L(1e-300))
    q = np.maximum(dens(gauss, 0), L(1e-300))
    return float(L(0.5) * max(np.sum((p - q) * np.log(p / q)) * sd * (z[1] - z[0]), L(0)))


@pytest.mark.parametrize("kind", ["inla", "wide"])
def test_kld_matches_the_direct_quadrature(kind):
    rng = np.random.default_rng(31 if kind == "inla" else 32)
    mix = _random_mixtures(rng, 300, kind)
    gauss = Mixture(np.ones(1), mix.mean()[None, :], mix.sd()[None, :])
    got = kld_gaussian_vs(mix, gauss)
    ref = np.array([_kld_direct(mix, gauss, i) for i in range(mix.n)])
    assert np.all(ref > 0)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=0)
    # against another mixture than the moment-matched Gaussian, too
    other = Mixture(np.array([0.3, 0.7]), mix.loc[:2] + 0.1, mix.scale[:2] * 1.2)
    got2 = kld_gaussian_vs(mix, other)
    ref2 = np.array([_kld_direct(mix, other, i) for i in range(mix.n)])
    np.testing.assert_allclose(got2, ref2, rtol=1e-8, atol=0)


def test_kernels_agree_with_the_blocked_numpy_path_and_any_thread_split(monkeypatch):
    """The numba kernels give what the numpy iterations of the skew-normal path give for
    Gaussian components, and the same bits whatever the split over threads."""
    rng = np.random.default_rng(41)
    mix = _random_mixtures(rng, 2000, "inla")
    fast = mix.summary(QUANTILES, method="exact")
    gauss = Mixture(np.ones(1), mix.mean()[None, :], mix.sd()[None, :])
    kld = kld_gaussian_vs(mix, gauss)
    # the numpy path (as for skew-normal components), on shape = tiny nonzero
    skewish = Mixture(mix.weights, mix.loc, mix.scale, np.full(mix.loc.shape, 1e-300))
    assert skewish.shape is not None
    slow = S._blockwise(lambda m: S.summary_columns(m, QUANTILES), (skewish,), skewish.n, 1)
    sd = fast["sd"]
    for key in fast:
        # the parabola refinement of the skew path's mode stops at ~1e-8 sd (finite differences)
        assert np.max(np.abs(fast[key] - slow[key]) / sd) <= (1e-7 if key == "mode" else 1e-9), key
    np.testing.assert_allclose(kld, S._kld(mix, gauss), rtol=1e-6, atol=1e-15)
    monkeypatch.setattr(S, "_NODES_PER_THREAD", 100)
    monkeypatch.setattr(S, "kernel_threads", lambda: 4)
    split = mix.summary(QUANTILES, method="exact")
    for key in fast:
        np.testing.assert_array_equal(split[key], fast[key])
    np.testing.assert_array_equal(kld_gaussian_vs(mix, gauss), kld)


def test_degenerate_and_single_component_nodes():
    """A node pinned by a constraint (all scales 0) is a point mass: quantiles and mode at
    its value, kld 0, no nan; one component: the Gaussian's closed forms."""
    mix = Mixture(np.array([0.5, 0.5]), np.array([[1.0, 0.0], [1.0, 2.0]]), np.array([[0.0, 1.0], [0.0, 1.5]]))
    out = mix.summary()
    for key in ("0.025quant", "0.5quant", "0.975quant", "mode"):
        assert out[key][0] == 1.0
        assert np.isfinite(out[key][1])
    gauss = Mixture(np.ones(1), mix.mean()[None, :], mix.sd()[None, :])
    kld = kld_gaussian_vs(mix, gauss)
    assert kld[0] == 0.0 and kld[1] > 0.0
    one = Mixture(np.ones(1), np.array([[0.5, -1.0]]), np.array([[2.0, 0.1]]))
    np.testing.assert_allclose(one.quantile(0.975), [0.5 + 2.0 * 1.959963984540054, -1.0 + 0.1 * 1.959963984540054])
    np.testing.assert_array_equal(one.mode(), [0.5, -1.0])


def test_skew_normal_quantiles_converge():
    """The numpy path (skew-normal components): cdf(quantile) = p, to rounding."""
    rng = np.random.default_rng(51)
    K, n = 5, 200
    mix = Mixture(rng.dirichlet(np.ones(K)), rng.normal(0, 0.3, (K, n)), rng.uniform(0.5, 1.5, (K, n)), rng.normal(0, 2.0, (K, n)))
    for p in (0.025, 0.5, 0.975):
        q = mix.quantile(p)
        np.testing.assert_allclose(mix.cdf(q[None, :])[0], p, atol=1e-12)
