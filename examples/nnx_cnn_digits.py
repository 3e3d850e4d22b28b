"""Your own Flax NNX model and data, in a notebook: a surface, its figure and the Hessian's top
eigenvalues in a few calls. Run: ``python examples/nnx_cnn_digits.py`` (about a minute on 2 CPU
cores); it writes ``cnn-digits.h5`` and ``cnn-digits.png`` in the current folder."""

import jax
import optax
from flax import nnx
from sklearn.datasets import load_digits

import landscape


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 8, kernel_size=(3, 3), rngs=rngs)
        self.dense = nnx.Linear(8 * 8 * 8, 10, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.conv(x))
        return self.dense(x.reshape(x.shape[0], -1))


def loss_fn(model, batch):
    x, y = batch
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, {"acc": (logits.argmax(-1) == y).mean()}


x, y = load_digits(return_X_y=True)
x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")
model = CNN(nnx.Rngs(0))

# A few steps of training, as you would in your own notebook.
optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
train_step = nnx.jit(lambda m, o, b: o.update(m, nnx.grad(lambda m: loss_fn(m, b)[0])(m)))
for _ in range(100):
    train_step(model, optimizer, (x, y))

surface = landscape.surface(loss_fn, model, (x, y), x="-1:1:21", out="cnn-digits.h5")
surface.plot().savefig("cnn-digits.png")
print(landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2))
