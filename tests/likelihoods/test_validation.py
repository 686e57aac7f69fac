"""Data validation: values outside a family's support are DataErrors naming the family, the
1-based row and the value; missing responses (NaN) are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from adelia.errors import ControlError, DataError
from adelia.likelihoods import FAMILIES, make_likelihood

NAN = np.nan


@pytest.mark.parametrize(
    "family,y,data,words",
    [
        ("poisson", [1, 2, -1], {}, ["row 3", "y = -1", "count"]),
        ("poisson", [1, 2.5, 3], {}, ["row 2", "y = 2.5"]),
        ("poisson", [1, 2, 3], {"E": [1, -0.5, 1]}, ["row 2", "E = -0.5"]),
        ("binomial", [1, 4, 0], {"Ntrials": [2, 3, 1]}, ["row 2", "y = 4", "Ntrials = 3"]),
        ("binomial", [1, 0, 0], {"Ntrials": [2, 1.5, 1]}, ["row 2", "Ntrials = 1.5"]),
        ("binomial", [0, 1, 2], {}, ["row 3", "y = 2", "Ntrials = 1"]),  # default Ntrials = 1
        ("betabinomial", [1, 6], {"Ntrials": [3, 5]}, ["row 2", "y = 6"]),
        ("nbinomial", [0, 3, -2], {}, ["row 3", "y = -2"]),
        ("nbinomial", [0, 3, 2], {"E": [1, 0, 1]}, ["row 2", "E = 0", "positive"]),
        ("zeroinflatedpoisson1", [0, 0.5], {}, ["row 2", "y = 0.5"]),
        ("zeroinflatednbinomial1", [0, -1], {}, ["row 2", "y = -1"]),
        ("gamma", [1.0, 0.0, 2.0], {}, ["row 2", "y = 0", "positive"]),
        ("gamma", [1.0, 2.0], {"scale": [1.0, -1.0]}, ["row 2", "scale = -1"]),
        ("beta", [0.2, 1.0], {}, ["row 2", "y = 1", "(0, 1)"]),
        ("beta", [0.0, 0.5], {}, ["row 1", "y = 0"]),
        ("lognormal", [1.0, -3.0], {}, ["row 2", "y = -3"]),
        ("exponential", [1.0, 2.0, 0.0], {}, ["row 3", "y = 0"]),
        ("weibull", [-1.0, 2.0], {}, ["row 1", "y = -1"]),
        ("gaussian", [0.0, np.inf], {}, ["row 2", "y = inf", "finite"]),
        ("gaussian", [0.0, 1.0], {"scale": [1.0, 0.0]}, ["row 2", "scale = 0"]),
        ("t", [0.0, 1.0], {"weights": [1.0, np.nan]}, ["row 2", "weights = nan"]),
        ("weibullsurv", [1.0, 0.0], {"event": [0, 1]}, ["row 2", "time = 0", "observed"]),
        ("weibullsurv", [1.0, 2.0], {"event": [0, 4]}, ["row 2", "event = 4"]),
        ("exponentialsurv", [1.0, 2.0], {"event": [3, 1], "time2": [0.5, 0]}, ["row 1", "time2 = 0.5"]),
        ("lognormalsurv", [1.0, 2.0], {"event": [1, 1], "truncation": [0, 3.0]}, ["row 2", "truncation = 3"]),
        ("exponentialsurv", [1.0, -2.0], {"event": [1, 0]}, ["row 2", "time = -2"]),
    ],
)
def test_out_of_support_values_are_named(family, y, data, words):
    lik = make_likelihood(family)
    with pytest.raises(DataError) as err:
        lik.validate(np.asarray(y, dtype=float), {k: np.asarray(v, dtype=float) for k, v in data.items()})
    msg = str(err.value)
    assert f'family "{family}"' in msg
    for w in words:
        assert w in msg


def test_missing_responses_are_skipped():
    # NaN responses are "predict here": their (possibly meaningless) data are not checked
    make_likelihood("poisson").validate(np.array([1.0, NAN, 2.0]), {"E": np.array([1.0, -5.0, 2.0])})
    make_likelihood("binomial").validate(np.array([NAN, 1.0]), {"Ntrials": np.array([0.0, 1.0])})
    make_likelihood("beta").validate(np.array([NAN, 0.3]), {})
    make_likelihood("weibullsurv").validate(np.array([NAN, 1.0]), {"event": np.array([9.0, 1.0])})


def test_valid_data_pass_for_every_family(rng):
    for name, cls in FAMILIES.items():
        y = {"beta": rng.uniform(0.1, 0.9, 4)}.get(name, np.array([1.0, 2.0, 3.0, 1.0]))
        data = {"Ntrials": np.full(4, 5.0)} if "Ntrials" in cls.data_names else {}
        make_likelihood(name).validate(y, data)


def test_more_rows_like_it_are_counted():
    with pytest.raises(DataError, match="2 more rows like it"):
        make_likelihood("poisson").validate(np.array([-1.0, -2.0, 0.0, -3.0]), {})


def test_data_length_must_match_the_response():
    with pytest.raises(DataError, match='"E" has length 2 but the response has length 3'):
        make_likelihood("poisson").validate(np.ones(3), {"E": np.ones(2)})


def test_make_likelihood_checks_observation_data_names_and_values():
    with pytest.raises(ControlError) as err:
        make_likelihood("binomial", y=[1.0], Ntrial=[2.0])
    assert '"Ntrial"' in str(err.value) and "Ntrials" in str(err.value) and "weights" in str(err.value)
    with pytest.raises(DataError, match="row 1"):
        make_likelihood("binomial", y=[3.0], Ntrials=[2.0])
    lik = make_likelihood("binomial", y=[1.0, 2.0], Ntrials=[2.0, 2.0], weights=[1.0, 0.5])
    assert lik.family == "binomial"
