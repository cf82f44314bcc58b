"""Optimizers over the model's flat parameter buffer, gradient clipping and learning-rate
schedules. Each optimizer's state is a dict of flat arrays plus a step counter, so a
checkpoint saves and restores it exactly."""
from __future__ import annotations

import math

import numpy as np

from .._kernels import ops
from .._kernels import optim as _k
from ..core.errors import CharforgeError


class Optimizer:
    """Base: holds hyper-parameters, the state buffers and the step count."""

    name = ""
    buffers: tuple[str, ...] = ()

    def __init__(self, size_or_params, lr: float, dtype=np.float32, **hyper) -> None:
        if isinstance(size_or_params, np.ndarray):
            size, dtype = size_or_params.size, size_or_params.dtype
        else:
            size = int(size_or_params)
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise CharforgeError(f"learning rate must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.hyper = hyper
        self.step_count = 0
        self.state = {b: np.zeros(size, dtype) for b in self.buffers}

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Update params (flat, in place) with grads (flat)."""
        if params.shape != grads.shape or params.dtype != grads.dtype:
            raise CharforgeError("parameters and gradients must be flat arrays of one dtype/size")
        self.step_count += 1
        self._update(params, grads)

    def _update(self, params, grads) -> None:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr, **self.hyper}

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able scalars, named arrays) for a checkpoint."""
        return {"config": self.config(), "step": self.step_count}, dict(self.state)

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        for name in self.buffers:
            if name not in arrays or arrays[name].shape != self.state[name].shape:
                raise CharforgeError(f"optimizer state '{name}' is missing or has the wrong size")
            self.state[name][...] = arrays[name]
        step, lr = meta["step"], meta["config"]["lr"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise CharforgeError(f"optimizer step must be a whole number, 0 or more, got {step!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise CharforgeError(f"optimizer lr must be a positive number, got {lr!r}")
        self.step_count = step
        self.lr = float(lr)


class SGD(Optimizer):
    name = "sgd"
    buffers = ("momentum",)

    def __init__(self, size_or_params, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0,
                 dtype=np.float32):
        super().__init__(size_or_params, lr, dtype, momentum=float(momentum),
                         nesterov=bool(nesterov), weight_decay=float(weight_decay))

    def _update(self, params, grads):
        h = self.hyper
        _k.sgd_update(params, grads, self.state["momentum"], self.lr, h["momentum"],
                      h["nesterov"], h["weight_decay"])


class Adam(Optimizer):
    name = "adam"
    buffers = ("m", "v")

    def __init__(self, size_or_params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, dtype=np.float32):
        super().__init__(size_or_params, lr, dtype, beta1=float(beta1), beta2=float(beta2),
                         eps=float(eps), weight_decay=float(weight_decay))

    def _update(self, params, grads):
        h = self.hyper
        _k.adam_update(params, grads, self.state["m"], self.state["v"], self.lr, h["beta1"],
                       h["beta2"], h["eps"], self.step_count, h["weight_decay"])


class RMSprop(Optimizer):
    name = "rmsprop"
    buffers = ("square_avg",)

    def __init__(self, size_or_params, lr=1e-3, rho=0.9, eps=1e-8, dtype=np.float32):
        super().__init__(size_or_params, lr, dtype, rho=float(rho), eps=float(eps))

    def _update(self, params, grads):
        _k.rmsprop_update(params, grads, self.state["square_avg"], self.lr, self.hyper["rho"],
                          self.hyper["eps"])


class Adagrad(Optimizer):
    name = "adagrad"
    buffers = ("sum_sq",)

    def __init__(self, size_or_params, lr=1e-1, eps=1e-8, dtype=np.float32):
        super().__init__(size_or_params, lr, dtype, eps=float(eps))

    def _update(self, params, grads):
        _k.adagrad_update(params, grads, self.state["sum_sq"], self.lr, self.hyper["eps"])


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def make_optimizer(name: str, params: np.ndarray, **kwargs) -> Optimizer:
    """An optimizer by name ('sgd', 'adam', 'rmsprop', 'adagrad') for a flat buffer."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise CharforgeError(f"unknown optimizer {name!r}; choose one of: "
                             f"{', '.join(OPTIMIZERS)}") from None
    return cls(params, **kwargs)


def clip_global_norm(grads: np.ndarray, max_norm: float) -> float:
    """Scale grads (flat, in place) so their L2 norm is at most max_norm; return the norm before."""
    norm = float(ops.global_norm(grads))
    if max_norm > 0 and norm > max_norm:
        ops.scale_(grads, max_norm / (norm + 1e-6))
    return norm


def clip_value(grads: np.ndarray, limit: float) -> None:
    """Clip every gradient element to [-limit, limit] (char-rnn's grad_clip), in place."""
    ops.clip_(grads, limit)


def scheduled_lr(base_lr: float, epoch: int, schedules) -> float:
    """The learning rate of an epoch: each schedule applied in turn to the base rate."""
    lr = base_lr
    for schedule in schedules:
        lr = schedule(lr, epoch)
    return lr


class ExponentialDecay:
    """lr = base * rate ** epoch (char-rnn's learning_rate_decay per epoch)."""

    def __init__(self, rate: float, start_epoch: int = 0) -> None:
        self.rate, self.start_epoch = float(rate), int(start_epoch)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.rate ** max(0, epoch - self.start_epoch)


class StepDecay:
    """lr = base * gamma ** (epoch // every)."""

    def __init__(self, every: int, gamma: float = 0.5) -> None:
        if every < 1:
            raise CharforgeError("step decay needs every >= 1")
        self.every, self.gamma = int(every), float(gamma)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.every)
