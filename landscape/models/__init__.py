"""Built-in Flax NNX models, reduced to pure functions over plain dict pytrees.

Parameters leave NNX as plain nested dicts (``nnx.to_pure_dict``) so that directions, checkpoints
and file formats see ordinary pytrees; ``apply`` merges them back into the module graph inside
the trace, which costs nothing at run time under ``jit``.

Every ``nnx.Param`` is a parameter; every other variable (BatchNorm running statistics) is the
model's ``state``, kept beside the params and never mixed into them. :func:`pure_modes` gives
both modes: evaluation (running averages, state untouched) and training (batch statistics,
returns the updated state).
"""

from landscape.models.cnn import SmallCNN, flat_kernel_init
from landscape.models.mlp import MLP
from landscape.models.pure import ApplyFn, InitFn, PureModel, TrainApplyFn, pure_model, pure_modes
from landscape.models.resnet import BasicBlock, ResNet
from landscape.models.transformer import GPT
from landscape.models.vgg import VGG9

__all__ = [
    "GPT", "MLP", "VGG9", "ApplyFn", "BasicBlock", "InitFn", "PureModel", "ResNet", "SmallCNN",
    "TrainApplyFn", "flat_kernel_init", "pure_model", "pure_modes",
]
