"""Chapter 5's training run (autograder/hyperparameters/training.py) against torch, float64."""
import math
import time

import numpy as np
import pytest
import torch

from autograder.hyperparameters import training


def torch_model(params):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}


def torch_loss(p, X, y, weight_decay):
    hidden = torch.relu(torch.tensor(X) @ p["W1"].T + p["b1"])
    scores = hidden @ p["W2"].T + p["b2"]
    data = torch.nn.functional.cross_entropy(scores, torch.tensor(y))
    return data + 0.5 * weight_decay * (p["W1"].pow(2).sum() + p["W2"].pow(2).sum())


@pytest.mark.parametrize("hidden, weight_decay, n", [(64, 1e-4, 64), (7, 0.0, 13), (32, 0.3, 1)])
def test_loss_and_gradients_are_torch_autograds(hidden, weight_decay, n):
    X, y, _, _ = training.load_digits_split(1)
    params = training.init_params(hidden, 1.0, np.random.default_rng(hidden))
    params["b1"] = np.random.default_rng(2).normal(size=hidden)  # nonzero biases: their gradients count
    loss, grads = training.loss_and_gradients(params, X[:n], y[:n], weight_decay)
    p = torch_model(params)
    expected = torch_loss(p, X[:n], y[:n], weight_decay)
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], p[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_one_epoch_of_one_full_batch_step_is_torch_sgd_with_momentum_and_decay_on_weights_only():
    data = training.load_digits_split(0)
    lr, momentum, wd = 0.05, 0.9, 0.01
    run = training.train(lr=lr, weight_decay=wd, hidden=16, epochs=1, batch_size=10_000, momentum=momentum,
                         seed=3, data=data, n_train=100)
    start = training.init_params(16, 1.0, np.random.default_rng(3))
    p = torch_model(start)
    optimiser = torch.optim.SGD([{"params": [p["W1"], p["W2"]], "weight_decay": wd},
                                 {"params": [p["b1"], p["b2"]], "weight_decay": 0.0}], lr=lr, momentum=momentum)
    X, y = data[0][:100], data[1][:100]
    loss = torch_loss(p, X, y, 0.0)  # torch's SGD adds the decay to the gradient itself
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    assert run.initial_loss == pytest.approx(torch_loss(torch_model(start), X, y, wd).item(), rel=1e-12)
    for k in start:
        np.testing.assert_allclose(run.weights[k], p[k].detach().numpy(), rtol=1e-10, atol=1e-13)


def test_two_steps_with_momentum_match_torch():
    data = training.load_digits_split(0)
    run = training.train(lr=0.1, weight_decay=1e-3, hidden=8, epochs=2, batch_size=50, momentum=0.5,
                         seed=4, data=data, n_train=50)
    start = training.init_params(8, 1.0, np.random.default_rng(4))
    p = torch_model(start)
    optimiser = torch.optim.SGD([{"params": [p["W1"], p["W2"]], "weight_decay": 1e-3},
                                 {"params": [p["b1"], p["b2"]]}], lr=0.1, momentum=0.5)
    for _ in range(2):  # one batch of the whole (shuffled) set: the order does not change a mean
        optimiser.zero_grad()
        torch_loss(p, data[0][:50], data[1][:50], 0.0).backward()
        optimiser.step()
    for k in start:
        np.testing.assert_allclose(run.weights[k], p[k].detach().numpy(), rtol=1e-10, atol=1e-13)


def test_split_is_fixed_by_the_seed_and_standardised_with_training_statistics():
    a, b, c = training.load_digits_split(0), training.load_digits_split(0), training.load_digits_split(1)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)
    assert not np.array_equal(a[1], c[1])
    X_train, y_train, X_val, y_val = a
    assert X_train.shape == (1348, 64) and X_val.shape == (449, 64) and len(y_train) + len(y_val) == 1797
    assert np.abs(X_train.mean(axis=0)).max() < 1e-10
    varying = X_train.std(axis=0) > 0
    np.testing.assert_allclose(X_train.std(axis=0)[varying], 1.0)
    assert np.abs(X_val.mean(axis=0)).max() > 1e-3  # validation statistics were not used
    with pytest.raises(ValueError):
        X_train[0, 0] = 1.0
    with pytest.raises(ValueError):
        training.load_digits_split(0, validation=1.5)


def test_run_is_deterministic_records_everything_and_leaves_the_global_rng_alone():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = training.train(epochs=5, record_ratios=True, snapshot_epochs=(0, 5))
    b = training.train(epochs=5, record_ratios=True, snapshot_epochs=(0, 5))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert a.train_loss == b.train_loss and a.val_accuracy == b.val_accuracy
    assert a.epochs_run == 5 and len(a.train_loss) == len(a.val_accuracy) == 5 and not a.diverged
    assert set(a.update_ratios) == {"W1", "W2"} and all(len(v) == 5 for v in a.update_ratios.values())
    assert all(1e-5 < r < 1e-1 for v in a.update_ratios.values() for r in v)
    assert [w.shape for w in a.first_layer_snapshots] == [(64, 64), (64, 64)]
    assert not np.array_equal(*a.first_layer_snapshots)
    assert {k: v.shape for k, v in a.weights.items()} == {"W1": (64, 64), "b1": (64,), "W2": (10, 64), "b2": (10,)}
    assert a.val_accuracy[-1] > 0.9 and a.train_loss[-1] < a.train_loss[0] < a.initial_loss
    assert training.train(epochs=5, seed=1).train_loss != a.train_loss


def test_initial_loss_is_ln10_for_a_small_init_and_grows_with_regularisation():
    small = training.train(init_scale=1e-3, weight_decay=0.0, epochs=1).initial_loss
    assert small == pytest.approx(math.log(10), abs=1e-3)
    assert training.train(init_scale=1e-3, weight_decay=10.0, epochs=1).initial_loss > small


def test_divergence_stops_the_run_and_keeps_the_nan():
    exploded = training.train(lr=10.0, epochs=20)
    assert exploded.diverged and exploded.epochs_run < 20
    assert not math.isfinite(exploded.train_loss[-1])
    aborted = training.train(lr=1.0, epochs=20, abort_factor=3.0)
    assert aborted.diverged and aborted.train_loss[-1] > 3 * aborted.initial_loss
    assert all(x <= 3 * aborted.initial_loss for x in aborted.train_loss[:-1])
    assert not training.train(lr=0.1, epochs=3, abort_factor=3.0).diverged


def test_on_epoch_sees_each_epoch_and_its_exception_propagates():
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, run):
        seen.append((epoch, run.epochs_run, len(run.val_accuracy)))
        if epoch == 3:
            raise Stop

    with pytest.raises(Stop):
        training.train(epochs=10, on_epoch=on_epoch)
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]


def test_overfits_twenty_examples():
    run = training.train(n_train=20, epochs=100, weight_decay=0.0)
    assert run.train_loss[-1] < 1e-2


def test_objective_is_the_final_validation_accuracy_and_a_run_is_fast():
    config = {"lr": 0.05, "weight_decay": 1e-4, "hidden": 32}
    assert training.objective(config, 3) == training.train(**config, epochs=3).val_accuracy[-1]
    training.train(epochs=1)
    start = time.process_time()
    training.train(epochs=20)
    assert time.process_time() - start < 1.0  # CPU time: what the run costs, whatever the load
