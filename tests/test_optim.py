import pytest
import torch

from rgnet.config import TrainConfig
from rgnet.engine.optim import FusedOptimizer


@pytest.mark.parametrize("opt, wd", [("adam", 0.0), ("adam", 1e-3), ("sgd", 0.0), ("sgd", 1e-3)])
def test_fused_optimizer_matches_torch_optim(opt, wd):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    ref = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    ref.load_state_dict(net.state_dict())
    cfg = TrainConfig(optimizer=opt, lr=0.05, weight_decay=wd, momentum=0.9)
    ours = FusedOptimizer(net.parameters(), cfg)
    theirs = (torch.optim.Adam(ref.parameters(), lr=0.05, weight_decay=wd) if opt == "adam" else
              torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=wd))
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for step in range(20):
        lr = 0.05 * (0.5 if step > 10 else 1.0)
        ours.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        ours.step(lr)
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(ref(x), y).backward()
        for g in theirs.param_groups:
            g["lr"] = lr
        theirs.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
