"""Chapter 3: the references against torch, the statistical tests' power and false-alarm rate."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import notebooks
from autograder import checking, sampling
from autograder.initialization import reference as ref
from conftest import ROOT

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


def test_gains_are_torchs_and_the_syllabus_values():
    for name in NONLINEARITIES:
        assert ref.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    assert ref.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert ref.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert ref.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert ref.calculate_gain("selu") == pytest.approx(0.75)
    for bad in [("softmax", None), ("leaky_relu", True), ("leaky_relu", "0.1")]:
        with pytest.raises(ValueError):
            ref.calculate_gain(*bad)


@pytest.mark.parametrize("module, shape", [(torch.nn.Linear(5, 3), (3, 5)), (torch.nn.Conv2d(3, 8, 3), (8, 3, 3, 3)),
                                           (torch.nn.Conv1d(2, 4, 5), (4, 2, 5))])
def test_fans_follow_torchs_layouts(module, shape):
    assert tuple(module.weight.shape) == shape
    rf = int(np.prod(shape[2:]))
    assert ref.fan_in_and_fan_out(shape) == (shape[1] * rf, shape[0] * rf)


def test_fans_need_two_dimensions():
    for shape in [(5,), ()]:
        with pytest.raises(ValueError):
            ref.fan_in_and_fan_out(shape)


@pytest.mark.parametrize("name, params", [("xavier_uniform", {}), ("xavier_normal", {"gain": 2.0}),
                                          ("kaiming_uniform", {}), ("kaiming_normal", {"mode": "fan_out",
                                                                                       "nonlinearity": "relu"}),
                                          ("kaiming_normal", {"a": 0.5})])
def test_torchs_samples_follow_the_law_the_checks_use(name, params):
    shape = (60, 16, 3, 3)
    x = getattr(ref, name)(shape, np.random.default_rng(0), **params)
    assert x.shape == shape and x.dtype == np.float64
    law = ref.law(name, shape, **params)
    assert sampling.follows(x, law), sampling.law_tests(x, law)


def test_law_formulas():
    assert ref.law("kaiming_normal", (60, 150)) == ("normal", pytest.approx(math.sqrt(2 / 150)))
    assert ref.law("kaiming_uniform", (60, 150), mode="fan_out") == ("uniform", pytest.approx(math.sqrt(6 / 60)))
    assert ref.law("xavier_uniform", (8, 3, 3, 3)) == ("uniform", pytest.approx(math.sqrt(6 / (27 + 72))))


@pytest.mark.parametrize("shape", [(50, 50), (20, 70), (70, 20), (8, 4, 3, 3)])
def test_orthogonal_reference(shape):
    w = ref.orthogonal(shape, np.random.default_rng(1), gain=1.5)
    assert w.shape == shape
    assert sampling.orthogonality_error(w, 1.5) < 1e-12


def test_layer_statistics_reference_matches_torch_modules():
    from autograder.initialization.checks import ScaledGaussian
    X = np.random.default_rng(0).standard_normal((30, 20))
    init = ScaledGaussian(gain=1.0)
    means, stds = ref.layer_statistics(X, [15, 10], init, "tanh", np.random.default_rng(3))
    rng = np.random.default_rng(3)
    h = torch.tensor(X)
    for i, size in enumerate([15, 10]):
        layer = torch.nn.Linear(h.shape[1], size, bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(init((size, h.shape[1]), rng)))
            h = torch.nn.Tanh()(layer(h))
        assert means[i] == pytest.approx(float(h.mean()), abs=1e-12)
        assert stds[i] == pytest.approx(float(h.std(correction=0)), rel=1e-12)


def test_the_tests_reject_a_scale_off_by_ten_percent():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.1, size=9000)
    assert sampling.follows(x, ("normal", 1.1)) and not sampling.follows(x, ("normal", 1.0))
    u = rng.uniform(-1.0, 1.0, size=9000)
    assert sampling.follows(u, ("uniform", 1.0)) and not sampling.follows(u, ("uniform", 1.1))
    assert not sampling.follows(u, ("normal", 1 / math.sqrt(3)))  # the right std, the wrong law: KS


def test_haar_signs_tell_a_plain_qr_from_torchs():
    negative = total = 0
    plain = 0
    for seed in range(5):
        w = ref.orthogonal((60, 60), np.random.default_rng(seed))
        k, m = sampling.negative_diagonal(w)
        negative, total = negative + k, total + m
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((60, 60)))
        plain += sampling.negative_diagonal(q)[0]
    assert sampling.binomial_p(negative, total) >= sampling.ALPHA
    assert sampling.binomial_p(plain, total) < sampling.ALPHA


def test_false_alarm_bound_is_below_one_in_a_million():
    from autograder.initialization import checks
    for check in checks.CHECKS.values():
        if isinstance(check, sampling.SamplerCheck):
            tests = 4 * len(check.cases(True)) + 1
            assert tests <= sampling.MAX_TESTS and tests * sampling.ALPHA < 1e-6


def test_the_kernel_side_imports_neither_torch_nor_scipy():
    code = ("import sys, autograder.initialization.checks; "
            "assert not {'torch', 'scipy'} & set(m.split('.')[0] for m in sys.modules), 'oracle imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def _solution_functions():
    nb = notebooks.load(ROOT / "solutions" / "initialization" / "initialization.ipynb")
    for cell in nb.cells:  # skip the demo (slow) and the test cells
        if notebooks.grade_id(cell) in ("experiment",):
            cell.source = ""
    return notebooks.namespace(nb)


@pytest.mark.slow
def test_a_correct_implementation_never_fails_a_statistical_check_over_200_seeds(monkeypatch):
    """Every sampler check (hidden cases too) on the solution, with 200 shifts of the case seeds."""
    from autograder.initialization import checks
    ns = _solution_functions()
    original = checking.case_seed
    samplers = [c for c in checks.CHECKS.values() if isinstance(c, sampling.SamplerCheck)]
    for shift in range(1, 201):
        monkeypatch.setattr(checking, "case_seed", lambda row, index, s=shift: original(row, index) + 7919 * s)
        for check in samplers:
            verdict = check.judge(check.run([ns[check.name]], True), True)
            assert verdict.passed, f"seed shift {shift}:\n{verdict.text}"


@pytest.mark.parametrize("name", ["calculate_gain", "fan_in_and_fan_out", "xavier_uniform", "orthogonal"])
def test_the_judge_reads_forged_or_broken_records_without_crashing(name):
    """A record the kernel could have written by hand: wrong types everywhere, never an exception."""
    from autograder.initialization import checks
    check = checks.CHECKS[name]
    n = len(check.cases(False))
    garbage = [{"result": {"py": 3}}, {"sample": {"py": None}, "same_seed_same": "yes"}, {"warnings": 5},
               {"result": {"tuple": [{"str": "returned"}]}}, "not a dict", {"sample": {"array": "AAAA"}}]
    for observation in garbage:
        verdict = check.judge({"check": name, "hidden": False, "cases": [observation] * n}, False)
        assert not verdict.passed and verdict.text


def test_a_sampler_returning_float32_or_the_wrong_shape_is_told_so():
    from autograder.initialization import checks
    check = checks.CHECKS["xavier_normal"]
    verdict = check.judge(check.run([lambda shape, rng, gain=1.0: rng.normal(size=shape).astype(np.float32)], False), False)
    assert not verdict.passed and "float64" in verdict.text
    verdict = check.judge(check.run([lambda shape, rng, gain=1.0: rng.normal(size=shape[::-1])], False), False)
    assert not verdict.passed and "expected" in verdict.text and "shape" in verdict.text


def test_the_grader_not_the_kernel_decides_whether_the_rng_was_used():
    """The kernel records digests of the repeated calls; the grader compares them with the sample
    it decodes, so a record whose second call's digest is not the sample's fails 'same seed'."""
    from autograder.initialization import checks
    from autograder.sampling import array_digest
    check = checks.CHECKS["xavier_normal"]

    def good(shape, rng, gain=1.0):
        receptive = int(np.prod(shape[2:]))
        return rng.normal(scale=gain * (2.0 / ((shape[0] + shape[1]) * receptive)) ** 0.5, size=shape)
    record = check.run([good], False)
    assert check.judge(record, False).passed
    case = record["cases"][0]
    assert "same_seed_same" not in case and "global_state_unchanged" not in case
    for key, says in [("again_digest", "same seed"), ("state_after", "global random state")]:
        forged = {**record, "cases": [dict(c) for c in record["cases"]]}
        forged["cases"][0][key] = array_digest(np.zeros(3))
        verdict = check.judge(forged, False)
        assert not verdict.passed and says in verdict.text, verdict.text
