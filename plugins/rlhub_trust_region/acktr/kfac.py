"""K-FAC: a Kronecker-factored approximation of the Fisher matrix as a PyTorch optimizer.

Written here because no maintained PyTorch K-FAC fits an SB3 policy cleanly: ``kfac-pytorch``
targets distributed supervised training (its own schedulers, no KL clipping), and ACKTR needs the
Fisher of a loss other than the one being minimised (sampled actions, a noisy critic output).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch as th
from torch import nn
from torch.nn import functional as F


class KFAC(th.optim.Optimizer):
    """
    Natural-gradient steps with a Kronecker-factored Fisher for the linear and conv layers of a model

    For a layer ``y = W a`` (bias as a last input of constant 1) the Fisher block of ``W`` is
    approximated by ``G (x) A``, with ``A = E[a a^T]`` and ``G = E[g g^T]``, ``g`` the gradient of the
    Fisher loss with respect to ``y``. Both factors are running averages (``stat_decay``), updated by
    :meth:`update_curvature` from a loss whose gradient samples the Fisher (the log-likelihood of
    actions sampled from the policy, for instance). :meth:`step` preconditions each layer's gradient
    by ``(G (x) A + damping I)^-1``, exactly, in the eigenbases of ``A`` and ``G`` (refreshed every
    ``eigen_update_interval`` steps); parameters outside such layers keep their plain gradient. The
    whole step is then scaled down so that its predicted KL, ``lr^2 g^T F^-1 g``, is at most
    ``kl_clip``, and applied with momentum.

    Paper: Martens & Grosse (2015), "Optimizing Neural Networks with Kronecker-factored Approximate
    Curvature" (arXiv 1503.05671); Grosse & Martens (2016), "A Kronecker-factored approximate Fisher
    matrix for convolution layers" (arXiv 1602.01407); Wu et al. (2017), ACKTR (arXiv 1708.05144)
    for the KL clipping

    :param model: The model whose ``nn.Linear`` and ``nn.Conv2d`` layers get natural gradients
    :param lr: Learning rate (the step before KL clipping)
    :param momentum: Momentum of the (preconditioned, clipped) steps
    :param damping: Added to the Kronecker-factored Fisher (Tikhonov damping)
    :param stat_decay: Decay of the running averages of the factors
    :param kl_clip: Bound on the predicted KL of one step
    :param eigen_update_interval: Steps between eigendecompositions of the factors
    """

    def __init__(self, model: nn.Module, lr: float = 0.25, momentum: float = 0.9, damping: float = 1e-2,
                 stat_decay: float = 0.99, kl_clip: float = 1e-3, eigen_update_interval: int = 10) -> None:
        if (lr < 0 or damping <= 0 or not 0 <= momentum < 1 or not 0 <= stat_decay < 1 or kl_clip <= 0
                or eigen_update_interval < 1):
            raise ValueError(f"KFAC needs lr >= 0, damping > 0, 0 <= momentum < 1, 0 <= stat_decay < 1, "
                             f"kl_clip > 0 and eigen_update_interval >= 1; got lr={lr}, damping={damping}, "
                             f"momentum={momentum}, stat_decay={stat_decay}, kl_clip={kl_clip}, "
                             f"eigen_update_interval={eigen_update_interval}")
        super().__init__(model.parameters(), dict(lr=lr, momentum=momentum, damping=damping, stat_decay=stat_decay,
                                                 kl_clip=kl_clip, eigen_update_interval=eigen_update_interval))
        # Grouped convolutions have no single Kronecker factorisation here: they keep plain gradients.
        self.layers = [module for module in model.modules()
                       if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)]
        self._recording = False
        self._recorded: dict[nn.Module, tuple[th.Tensor, th.Tensor]] = {}
        self._eigen: dict[nn.Module, tuple[th.Tensor, ...]] = {}
        self._steps = 0
        self.last_kl_scale = 1.0  # the KL clipping's factor at the last step, for logging
        for layer in self.layers:
            layer.register_forward_hook(self._record)

    # -- curvature --------------------------------------------------------------------------------

    def _record(self, layer: nn.Module, inputs: tuple[th.Tensor, ...], output: th.Tensor) -> None:
        if self._recording and th.is_grad_enabled():
            self._recorded[layer] = (inputs[0].detach(), output)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Keep each layer's input and output of the forward passes inside, for :meth:`update_curvature`."""
        self._recorded.clear()
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def update_curvature(self, fisher_loss: th.Tensor) -> None:
        """Fold the factors of the layers recorded by :meth:`recording` into the running averages.

        ``fisher_loss`` is a batch mean whose per-sample gradients sample the Fisher; the model's
        ``.grad`` are left untouched (the outputs' gradients are taken directly).
        """
        layers = list(self._recorded)
        outputs = [self._recorded[layer][1] for layer in layers]
        output_grads = th.autograd.grad(fisher_loss, outputs, retain_graph=True, allow_unused=True)
        for layer, output_grad in zip(layers, output_grads, strict=True):
            if output_grad is None:
                continue  # a layer the Fisher loss does not reach
            inputs = self._recorded[layer][0]
            a, g = _factor_samples(layer, inputs, output_grad)
            batch_size = inputs.shape[0]
            # A = E_batch[a a^T] (conv: summed over positions), G = E_batch[g g^T] of the
            # per-sample gradients, which are batch_size times the mean loss's.
            a_factor = a.T @ a / batch_size
            g_factor = g.T @ g * batch_size
            if isinstance(layer, nn.Conv2d):
                g_factor = g_factor / (g.shape[0] // batch_size)  # averaged over positions
            state = self.state[layer.weight]
            if "a_factor" not in state:
                state["a_factor"], state["g_factor"] = a_factor, g_factor
            else:
                decay = self.param_groups[0]["stat_decay"]
                state["a_factor"].mul_(decay).add_(a_factor, alpha=1 - decay)
                state["g_factor"].mul_(decay).add_(g_factor, alpha=1 - decay)
        self._recorded.clear()

    # -- the step ----------------------------------------------------------------------------------

    @th.no_grad()
    def natural_gradients(self) -> dict[nn.Parameter, th.Tensor]:
        """Each parameter's gradient, preconditioned by its layer's ``(G (x) A + damping I)^-1``."""
        group = self.param_groups[0]
        directions = {param: param.grad for param_group in self.param_groups for param in param_group["params"]
                      if param.grad is not None}
        refresh = self._steps % group["eigen_update_interval"] == 0
        for layer in self.layers:
            state = self.state[layer.weight]
            if layer.weight.grad is None or "a_factor" not in state:
                continue
            if refresh or layer not in self._eigen:
                self._eigen[layer] = (*th.linalg.eigh(state["a_factor"]), *th.linalg.eigh(state["g_factor"]))
            a_values, a_vectors, g_values, g_vectors = self._eigen[layer]
            gradient = _weight_matrix(layer.weight.grad, None if layer.bias is None else layer.bias.grad)
            # (G (x) A + d I)^-1 vec(grad), exactly: rotate into both eigenbases, divide, rotate back.
            rotated = g_vectors.T @ gradient @ a_vectors
            rotated /= g_values.clamp(min=0)[:, None] * a_values.clamp(min=0)[None, :] + group["damping"]
            natural = g_vectors @ rotated @ a_vectors.T
            if layer.bias is not None:
                directions[layer.bias] = natural[:, -1].contiguous()
                natural = natural[:, :-1]
            directions[layer.weight] = natural.reshape(layer.weight.shape)
        return directions

    @th.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        """Precondition, clip the step's predicted KL to ``kl_clip``, and apply with momentum."""
        group = self.param_groups[0]
        directions = self.natural_gradients()
        lr = group["lr"]
        predicted_kl = lr ** 2 * sum(float((direction * param.grad).sum()) for param, direction in directions.items())
        scale = min(1.0, math.sqrt(group["kl_clip"] / predicted_kl)) if predicted_kl > 0 else 1.0
        for param, direction in directions.items():
            state = self.state[param]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = th.zeros_like(param)
            buffer = state["momentum_buffer"].mul_(group["momentum"]).add_(direction, alpha=scale)
            # lr * (1 - momentum) keeps the long-run step at lr, as in the ACKTR reference code.
            param.add_(buffer, alpha=-lr * (1 - group["momentum"]))
        self._steps += 1
        self.last_kl_scale = scale


def _factor_samples(layer: nn.Module, inputs: th.Tensor, output_grad: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The rows ``a`` (inputs, with a 1 for the bias) and ``g`` (output gradients) whose outer products
    make the layer's factors; for a convolution, one row per sample and output position."""
    if isinstance(layer, nn.Conv2d):
        patches = F.unfold(inputs, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                           stride=layer.stride)  # (batch, channels * kernel, positions)
        a = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        g = output_grad.permute(0, 2, 3, 1).reshape(-1, output_grad.shape[1])
    else:
        a = inputs.reshape(-1, inputs.shape[-1])
        g = output_grad.reshape(-1, output_grad.shape[-1])
    if layer.bias is not None:
        a = th.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
    return a, g


def _weight_matrix(weight_grad: th.Tensor, bias_grad: th.Tensor | None) -> th.Tensor:
    """A layer's gradient as one (outputs, inputs [+ 1]) matrix, the bias as the last column."""
    matrix = weight_grad.reshape(weight_grad.shape[0], -1)
    return matrix if bias_grad is None else th.cat([matrix, bias_grad[:, None]], dim=1)
