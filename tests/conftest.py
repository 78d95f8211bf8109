import pytest

from rgnet import ModelConfig, PruneConfig, RunConfig, StoreConfig, TrainConfig


def small_config(**sections) -> RunConfig:
    """A run that takes about a second: MNIST-1D, a small MLP, 3 levels of 60 steps."""
    cfg = RunConfig(model=ModelConfig("mlp", {"widths": [32, 32]}),
                    train=TrainConfig(steps=60, eval_every=20, batch_size=50, lr=3e-3),
                    prune=PruneConfig(levels=3, fraction=0.3), store=StoreConfig(bins=16))
    return cfg.replace(**sections) if sections else cfg


@pytest.fixture
def small_cfg() -> RunConfig:
    return small_config()
