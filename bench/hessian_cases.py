"""The models ``bench/hessian.py`` probes, each with an identical PyTorch twin for PyHessian.

- ``mlp``: a 10-64-64-1 ReLU MLP (4,929 parameters), MSE regression on 2,000 samples;
- ``cnn``: the ``digits-cnn`` workload (landscape.models.SmallCNN: two 3×3 convolutions with 16
  and 32 channels, a 2×2 average pool and a dense classifier; 9,930 parameters), softmax
  cross-entropy on the 1,437 training images of scikit-learn's 8×8 digits.

Each case trains briefly with Adam, then copies the weights into the torch twin (Flax kernels
are (in, out) and convolutions HWIO; torch weights are (out, in) and OIHW; the twin flattens in
NHWC order as Flax does), so both tools differentiate the same function on the same data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

MLP_SIZES = (10, 64, 64, 1)
MLP_SAMPLES = 2000


@dataclasses.dataclass
class Case:
    name: str
    describe: str
    workload: Any
    train_steps: int
    lr: float
    torch_twin: Callable[[Any], tuple[Any, Any, tuple]]  # params -> (model, criterion, data)


def mlp_case(steps: int) -> Case:
    from landscape.models import MLP, pure_model
    from landscape.workload import Dataset, Workload

    rng = np.random.default_rng(0)
    x = rng.normal(size=(MLP_SAMPLES, MLP_SIZES[0])).astype(np.float32)
    y = np.sin(x @ rng.normal(size=(MLP_SIZES[0], 1)) / 2).astype(np.float32)
    init, apply = pure_model(lambda rngs: MLP(MLP_SIZES, rngs=rngs))

    def squared_error(out, batch):  # the loss of the outputs: the Gauss–Newton matrix's
        return jnp.mean((out - batch.targets) ** 2)

    def loss(params, state, batch):
        return squared_error(apply(params, state, batch.inputs), batch), {}

    workload = Workload(name="mlp-10-64-64-1", init=init, loss=loss, train=Dataset(x, y),
                        input_shape=(MLP_SIZES[0],), batch_size=MLP_SAMPLES, apply=apply,
                        output_loss=squared_error)

    def twin(params):
        import torch

        layers = []
        for i, (a, b) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(MLP_SIZES) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers)
        with torch.no_grad():
            linears = [m for m in model if isinstance(m, torch.nn.Linear)]
            for i, linear in enumerate(linears):
                _copy_dense(linear, params[f"dense{i}"])
        data = (torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
        return model, torch.nn.MSELoss(), data

    return Case("mlp", f"{'-'.join(map(str, MLP_SIZES))} MLP, MSE on {MLP_SAMPLES} samples",
                workload, steps, 1e-2, twin)


def cnn_case(steps: int) -> Case:
    from landscape.data import get_workload

    workload = get_workload("digits-cnn")

    def twin(params):
        import torch

        class SmallCNN(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv0 = torch.nn.Conv2d(1, 16, 3, padding=1)
                self.conv1 = torch.nn.Conv2d(16, 32, 3, padding=1)
                self.dense = torch.nn.Linear(4 * 4 * 32, 10)

            def forward(self, x):
                x = torch.relu(self.conv0(x))
                x = torch.relu(self.conv1(x))
                x = torch.nn.functional.avg_pool2d(x, 2)
                return self.dense(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))  # NHWC order

        model = SmallCNN()
        with torch.no_grad():
            for name in ("conv0", "conv1"):
                conv = getattr(model, name)
                kernel = np.asarray(params[name]["kernel"]).transpose(3, 2, 0, 1).copy()  # OIHW
                conv.weight.copy_(torch.from_numpy(kernel))
                conv.bias.copy_(torch.from_numpy(np.asarray(params[name]["bias"]).copy()))
            _copy_dense(model.dense, params["dense"])
        inputs = workload.train.inputs.transpose(0, 3, 1, 2).copy()  # NCHW
        data = (torch.from_numpy(inputs), torch.from_numpy(workload.train.targets.astype(np.int64)))
        return model, torch.nn.CrossEntropyLoss(), data

    return Case("cnn", "digits-cnn (conv 16, conv 32, pool, dense), cross-entropy on 1,437 "
                "images", workload, steps, 3e-3, twin)


def _copy_dense(linear, layer) -> None:
    import torch

    linear.weight.copy_(torch.from_numpy(np.asarray(layer["kernel"]).T.copy()))
    linear.bias.copy_(torch.from_numpy(np.asarray(layer["bias"]).copy()))


CASES = {"mlp": mlp_case, "cnn": cnn_case}
