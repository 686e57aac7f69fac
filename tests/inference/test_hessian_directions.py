"""The Hessian at the mode along the mode search's directions (R-INLA's ``use.directions``).

Oracles: closed forms (a quadratic's Hessian; the second differences of a kink −c|θ₁| along
given directions), the axis differences on smooth functions, and the steps find_mode reports
through its callback.
"""

from __future__ import annotations

import numpy as np
import pytest

from adelia.inference.optimize import find_mode, hessian_from_gradients, hessian_from_values, search_directions

RNG = np.random.default_rng(18)


def _spd(d):
    M = RNG.normal(size=(d, d))
    return M @ M.T + d * np.eye(d)


def _quadratic(Q, mu, c=3.0):
    def f(t):
        r = np.atleast_2d(t) - mu
        return c - 0.5 * np.einsum("ki,ij,kj->k", r, Q, r)

    def grad(t):
        return -(np.atleast_2d(t) - mu) @ Q

    return f, grad


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_quadratic_hessian_is_exact_for_any_non_degenerate_directions(d):
    Q, mu = _spd(d), RNG.normal(size=d)
    f, grad = _quadratic(Q, mu)
    theta = mu + RNG.normal(size=d)  # the Hessian of a quadratic is the same everywhere
    f0 = float(f(theta)[0])
    for A in (np.eye(d), np.linalg.qr(RNG.normal(size=(d, d)))[0], RNG.normal(size=(d, d)) + 2 * np.eye(d)):
        assert abs(np.linalg.det(A)) > 1e-3
        hv = hessian_from_values(f, theta, f0, step=0.0707, directions=A)
        np.testing.assert_allclose(hv.hessian, Q, rtol=1e-8, atol=1e-8)
        hg = hessian_from_gradients(grad, theta, step=1e-3, directions=A)
        np.testing.assert_allclose(hg.hessian, Q, rtol=1e-9, atol=1e-9)


def _smooth(t):
    t = np.atleast_2d(t)
    x, y, z = t[:, 0], t[:, 1], t[:, 2]
    return -np.log(np.cosh(x - 0.3 * y)) - 0.5 * y**2 - np.exp(0.2 * z) + 0.1 * x * z - 0.25 * z**2


def _smooth_hessian(t):
    x, y, z = t
    s = 1.0 / np.cosh(x - 0.3 * y) ** 2  # d²/du² log cosh u = sech² u
    return np.array([
        [s, -0.3 * s, -0.1],
        [-0.3 * s, 0.09 * s + 1.0, 0.0],
        [-0.1, 0.0, 0.04 * np.exp(0.2 * z) + 0.5],
    ])  # of −f


def test_directions_agree_with_axes_on_a_smooth_function_to_difference_accuracy():
    theta = np.array([0.4, -0.2, 0.7])
    f0 = float(_smooth(theta)[0])
    h = np.sqrt(0.005)
    axes = hessian_from_values(_smooth, theta, f0, step=h).hessian
    A = search_directions([np.array([0.3, -1.0, 0.2]), np.array([1.0, 0.5, 0.0]), np.array([0.1, 0.1, -2.0])], 3)
    along = hessian_from_values(_smooth, theta, f0, step=h, directions=A).hessian
    exact = _smooth_hessian(theta)
    # central second differences: O(h²) = O(0.005) error, times fourth derivatives of order 1
    np.testing.assert_allclose(axes, exact, atol=5e-3)
    np.testing.assert_allclose(along, exact, atol=5e-3)
    np.testing.assert_allclose(along, axes, atol=5e-3)


@pytest.mark.parametrize("angle", [0.0, 18.0, 40.0, 115.0])
def test_differences_across_a_kink_follow_the_directions(angle):
    # f = −c|θ₁| − ½θᵀQθ at θ = 0: R-INLA's second differences along A = [a₁ a₂] give
    # D = AᵀQA + K with K_ii = 2c|a_{1i}|/h and K_ij = c(|a_{1i} + a_{1j}| − |a_{1i} − a_{1j}|)/2h,
    # and the Hessian A⁻ᵀ D A⁻¹: the kink's share depends on the directions
    c, h = 0.7, np.sqrt(0.005)
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])

    def f(t):
        t = np.atleast_2d(t)
        return -c * np.abs(t[:, 0]) - 0.5 * np.einsum("ki,ij,kj->k", t, Q, t)

    phi = np.radians(angle)
    A = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    a1 = A[0]
    K = np.array([
        [2 * c * abs(a1[0]) / h, c * (abs(a1[0] + a1[1]) - abs(a1[0] - a1[1])) / (2 * h)],
        [0.0, 2 * c * abs(a1[1]) / h],
    ])
    K[1, 0] = K[0, 1]
    Ainv = np.linalg.inv(A)
    expected = Ainv.T @ (A.T @ Q @ A + K) @ Ainv
    got = hessian_from_values(f, np.zeros(2), 0.0, step=h, directions=A).hessian
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_search_directions_is_rinla_construction():
    # d = 1: R-INLA sets the single direction to 1
    np.testing.assert_array_equal(search_directions([np.array([-0.3])], 1), [[1.0]])
    # no step yet: R-INLA's initial matrix, ε off the diagonal (ε = cube root of DBL_EPSILON)
    eps = np.finfo(float).eps ** (1 / 3)
    A0 = search_directions([], 3)
    assert A0[0, 1] == pytest.approx(eps) and A0[0, 0] == pytest.approx(np.sqrt(1 - 2 * eps**2))
    steps = [np.array([1.0, 0.0, 0.0]), np.array([0.5, 2.0, 0.0]), np.array([-0.2, 0.1, -0.3])]
    A = search_directions(steps, 3)
    np.testing.assert_allclose(A.T @ A, np.eye(3), atol=1e-12)
    # column 0: the last step, signed so its largest entry is positive (GMRFLib_gsl_mgs)
    last = steps[-1] / np.linalg.norm(steps[-1])
    np.testing.assert_allclose(A[:, 0], -last, atol=1e-12)
    # column 1 lies in span(last two steps), column 2 completes (closed form: the
    # Gram-Schmidt of [s3, s2, s1])
    Qr, _ = np.linalg.qr(np.column_stack([steps[2], steps[1], steps[0]]))
    for k in range(3):
        assert abs(abs(A[:, k] @ Qr[:, k]) - 1.0) < 1e-12
    # only the d latest steps count
    A_more = search_directions([np.array([0.0, 0.0, 9.0])] + steps, 3)
    np.testing.assert_allclose(A_more, A, atol=1e-12)
    # a step in the span of the later ones still gives an orthonormal basis
    Adep = search_directions([np.array([1.0, 1.0, 0.0]), np.array([2.0, 2.0, 0.0]), np.array([0.0, 0.0, 1.0])], 3)
    np.testing.assert_allclose(Adep.T @ Adep, np.eye(3), atol=1e-12)


def test_find_mode_records_its_last_steps_as_directions():
    Q, mu = np.array([[3.0, 1.2], [1.2, 1.0]]), np.array([0.5, -1.0])

    def vg(t):
        r = t - mu
        return -0.5 * r @ Q @ r - 0.1 * (r @ r) ** 2, -(Q @ r) - 0.4 * (r @ r) * r

    thetas = [np.array([2.0, 1.0])]
    res = find_mode(vg, thetas[0], gtol=1e-8, callback=lambda it, th, f: thetas.append(th.copy()), frame_min_step=0.0)
    assert res.converged
    np.testing.assert_allclose(res.theta, mu, atol=1e-6)
    steps = [b - a for a, b in zip(thetas[:-1], thetas[1:]) if np.any(b != a)]
    assert len(steps) >= 2
    np.testing.assert_allclose(res.directions, search_directions(steps, 2), atol=1e-14)
    # by default (R-INLA's tolerance.x = 0.001) the polishing steps shorter than that (RMS over
    # θ), whose directions rounding sets, stay out of the frame; the search itself is the same
    default = find_mode(vg, thetas[0], gtol=1e-8)
    np.testing.assert_array_equal(default.theta, res.theta)
    long_steps = [s for s in steps if np.sqrt(np.mean(s**2)) >= 0.001]
    assert 2 <= len(long_steps) < len(steps)
    np.testing.assert_allclose(default.directions, search_directions(long_steps, 2), atol=1e-14)
    last = steps[-1] / np.linalg.norm(steps[-1])
    assert abs(res.directions[:, 0] @ last) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.directions.T @ res.directions, np.eye(2), atol=1e-12)
    # one hyperparameter: R-INLA's A = [[1]]
    res1 = find_mode(lambda t: (-(t[0] - 2.0) ** 2, np.array([-2 * (t[0] - 2.0)])), np.zeros(1), gtol=1e-8)
    np.testing.assert_array_equal(res1.directions, [[1.0]])


def test_rinla_weibull_cov_is_the_central_hessian_along_an_18_degree_frame():
    # issue 18 item 2, diagnosis: at R-INLA's own mode of weibull_surv (on the pc.alphaw kink),
    # adelia's log π̃ and R-INLA's central second differences (part IV of its "smart" strategy,
    # the only Hessian R-INLA 25.x computes) along an orthonormal frame whose first column is at
    # 18° in (alpha_intern, log precision) reproduce R-INLA's misc$cov_intern in all three
    # entries; the axes (0°) and adelia's own directions (about −25°) do not. So the objective and
    # the difference scheme agree with R-INLA; what is missing is only R-INLA's direction matrix,
    # i.e. the direction of the last step of its optimiser.
    import json

    from conftest import reference_call, shared_path

    from adelia.api import compile_model

    folder = shared_path("reference", "rinla", "weibull_surv")
    ref = json.loads((folder / "results.json").read_text())
    _, (formula, data, kw), _, _ = reference_call("weibull_surv")
    model = compile_model(formula, data, **kw)
    theta = np.array(ref["mode"]["theta"])
    f0 = float(model.log_posterior(theta))
    assert abs(f0 - ref["mode"]["log_posterior_mode"]) < 1e-5
    cov_rinla = np.array(ref["misc"]["cov_intern"])

    def cov_along(degrees):
        a = np.deg2rad(degrees)
        A = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        H = hessian_from_values(model.log_posterior_batch, theta, f0, step=np.sqrt(0.005), directions=A).hessian
        return np.linalg.inv(H)

    np.testing.assert_allclose(cov_along(18.0), cov_rinla, rtol=0.03)
    assert abs(cov_along(0.0)[1, 1] / cov_rinla[1, 1] - 1) > 1.0
    assert abs(cov_along(-25.0)[0, 1] - cov_rinla[0, 1]) > 0.01  # adelia's frame: the wrong sign
