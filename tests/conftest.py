import pytest

from rgnet import ModelConfig, PruneConfig, RunConfig, StoreConfig, TrainConfig


@pytest.fixture
def small_cfg() -> RunConfig:
    """A run that takes about a second: MNIST-1D, a small MLP, 3 levels of 60 steps."""
    return RunConfig(model=ModelConfig("mlp", {"widths": [32, 32]}),
                     train=TrainConfig(steps=60, eval_every=20, batch_size=50, lr=3e-3),
                     prune=PruneConfig(levels=3, fraction=0.3), store=StoreConfig(bins=16))
