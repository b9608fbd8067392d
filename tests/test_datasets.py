import numpy as np
import pytest

from reproduce import datasets
from reproduce.config import TEST_CONFIG, TWO_D_DATASETS
from reproduce.errors import ConfigError, DataError


@pytest.mark.parametrize("name", TWO_D_DATASETS)
def test_generated_sets_have_two_features_and_binary_labels(name):
    data = datasets.load_dataset(TEST_CONFIG.replace(dataset=name))
    assert data.x_train.shape == (64, 2) and data.x_val.shape == (16, 2)
    assert data.y_train.shape == (64, 1) and data.y_train.dtype == np.float32
    assert set(np.unique(np.concatenate([data.y_train, data.y_val]))) == {0.0, 1.0}
    assert data.n_classes == 2


def test_same_seed_gives_identical_data_and_other_seed_differs():
    first = datasets.load_dataset(TEST_CONFIG)
    again = datasets.load_dataset(TEST_CONFIG)
    other = datasets.load_dataset(TEST_CONFIG.replace(seed=1))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_val, again.y_val)
    assert not np.array_equal(first.x_train, other.x_train)


def test_standardised_with_training_statistics_only():
    data = datasets.load_dataset(TEST_CONFIG.replace(samples=400))
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-5)
    # Validation data use the training statistics, so they are not exactly standardised.
    assert np.abs(data.x_val.mean(axis=0)).max() > 1e-4


def test_digits_is_bundled_ten_class_data():
    data = datasets.load_dataset(TEST_CONFIG.replace(dataset="digits", samples=None))
    assert data.input_dim == 64 and data.n_classes == 10
    assert len(data.x_train) + len(data.x_val) == 1797
    assert data.y_train.dtype == np.int32 and data.y_train.ndim == 1


def test_samples_subsamples_a_real_set():
    data = datasets.load_dataset(TEST_CONFIG.replace(dataset="digits", samples=100))
    assert len(data.x_train) + len(data.x_val) == 100


def test_mnist_without_cache_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"MNIST is not cached at .*missing\.npz.*REPRODUCE_MNIST"):
        datasets.load_dataset(TEST_CONFIG.replace(dataset="mnist"), tmp_path / "missing.npz")


def test_mnist_reads_a_cached_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 255, (30, 28, 28)), y_train=np.arange(30) % 10,
             x_test=rng.integers(0, 255, (10, 28, 28)), y_test=np.arange(10))
    data = datasets.load_dataset(TEST_CONFIG.replace(dataset="mnist", samples=None), path)
    assert data.input_dim == 784 and len(data.x_train) == 32 and data.n_classes == 10


def test_probe_is_seeded_subset_of_training_data():
    data = datasets.load_dataset(TEST_CONFIG)
    x, y = datasets.make_probe(data, 10, seed=3)
    again, _ = datasets.make_probe(data, 10, seed=3)
    np.testing.assert_array_equal(x, again)
    assert x.shape == (10, 2) and y.shape == (10, 1)
    assert all(any(np.array_equal(row, train_row) for train_row in data.x_train) for row in x)
    everything, _ = datasets.make_probe(data, 1000, seed=3)
    assert len(everything) == len(data.x_train)


def test_too_few_samples_is_a_clear_error_before_any_data_is_built():
    with pytest.raises(ConfigError, match="2 samples with validation_fraction=0.2 leave an emp"):
        TEST_CONFIG.replace(samples=2)


def test_linear_set_is_linearly_separable_enough():
    from sklearn.linear_model import LogisticRegression

    data = datasets.load_dataset(TEST_CONFIG.replace(dataset="linear", samples=1000))
    score = LogisticRegression().fit(data.x_train, data.y_train.ravel()).score(
        data.x_val, data.y_val.ravel())
    assert score > 0.97
