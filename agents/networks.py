"""Q-networks for K seeds at once: every weight carries a leading seed axis.

`q_network` defines one seed's network (MLP torso for vector observations, Nature CNN for stacked
frames, plain or dueling head) and its initialization. `SeedStackQ` stacks K of them: linear
layers run as one batched GEMM (bmm) over the seed axis, convolutions as one grouped convolution,
so K seeds cost one call per layer, not K. Nothing crosses seeds: every op is per seed.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


# Wang et al. 2016, sec. 4.2: both streams backpropagate into the shared trunk, so the gradient
# entering it is rescaled by 1/sqrt(2) (with gradient norms clipped at 10, our default).
TRUNK_GRAD_SCALE = 2 ** -0.5


# Dueling head layouts (the `dueling_head` config option):
#  "streams": value and advantage streams of one hidden layer each, on the torso below the last
#             hidden layer (Wang et al. 2016, fig. 1 and sec. 4.2: two 512-unit streams on the conv
#             features), with the trunk gradient rescaled by 1/sqrt(2) as they did;
#  "linear":  one linear layer each on the full torso's last hidden layer (Dopamine's
#             FullRainbowNetwork, dopamine/jax/networks.py, used by its Rainbow and DrQ(eps)
#             agents), with no rescale, as there.
DUELING_HEADS = ("streams", "linear")


class DuelingHead(nn.Module):
    """Q = V + A - mean(A): the mean keeps V and A identifiable (Wang et al. 2016, eq. 9).
    `hidden` > 0: streams of one hidden layer each; 0: linear streams (see DUELING_HEADS)."""

    def __init__(self, in_features: int, n_actions: int, hidden: int):
        super().__init__()

        def stream(out: int) -> nn.Module:
            if not hidden:
                return nn.Linear(in_features, out)
            return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out))

        self.value, self.advantage = stream(1), stream(n_actions)
        self.trunk_grad_scale = TRUNK_GRAD_SCALE if hidden else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.trunk_grad_scale != 1.0:
            x = _ScaleGrad.apply(x, self.trunk_grad_scale)
        a = self.advantage(x)
        return self.value(x) + a - a.mean(dim=1, keepdim=True)


def mlp(obs_dim: int, n_actions: int, hidden: tuple[int, ...], dueling: bool, dueling_head: str = "streams") -> nn.Module:
    layers: list[nn.Module] = []
    width = obs_dim
    streams = dueling and dueling_head == "streams"  # the last hidden layer becomes the streams' width
    for h in hidden[:-1] if streams else hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    if dueling:
        layers.append(DuelingHead(width, n_actions, hidden[-1] if streams else 0))
    else:
        layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


CONV_PADDINGS = ("valid", "same")
INITS = ("torch", "xavier")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Flax SAME: the output is ceil(size / stride), the input padded by (before,
    after), the odd pixel after. 84 -> 21 -> 11 -> 11 for the Nature CNN's three layers."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class NatureCNN(nn.Module):
    """Mnih et al. 2015: 3 conv layers + 512 hidden units; uint8 frames scaled to [0, 1].
    `conv_padding="same"`: each convolution padded SAME, as Dopamine's networks (Flax's default)
    do: a 64 x 11 x 11 = 7744-wide flatten instead of Nature's 3136."""

    def __init__(self, in_channels: int, n_actions: int, dueling: bool, dueling_head: str = "streams",
                 conv_padding: str = "valid", size: int = 84):
        super().__init__()
        layers: list[nn.Module] = []
        self.pads = []
        for c_in, c_out, kernel, stride in ((in_channels, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)):
            pad = same_padding(size, kernel, stride) if conv_padding == "same" else (0, 0)
            self.pads.append(pad)
            layers += [nn.ZeroPad2d((*pad, *pad))] if pad != (0, 0) else []
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=stride), nn.ReLU()]
            size = (size + sum(pad) - kernel) // stride + 1
        self.conv = nn.Sequential(*layers, nn.Flatten())
        features = 64 * size * size
        if dueling and dueling_head == "streams":
            self.head: nn.Module = DuelingHead(features, n_actions, 512)
        elif dueling:
            self.head = nn.Sequential(nn.Linear(features, 512), nn.ReLU(), DuelingHead(512, n_actions, 0))
        else:
            self.head = nn.Sequential(nn.Linear(features, 512), nn.ReLU(), nn.Linear(512, n_actions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x.float() / 255.0))


def q_network(obs_shape: tuple[int, ...], n_actions: int, hidden: tuple[int, ...], dueling: bool,
              dueling_head: str = "streams", conv_padding: str = "valid", init: str = "torch") -> nn.Module:
    """One seed's network; its initialization under torch.manual_seed(seed) is that seed's.
    init "torch": PyTorch's layer defaults; "xavier": Glorot-uniform weights and zero biases,
    Dopamine's (nn.initializers.xavier_uniform in dopamine/jax/networks.py)."""
    if len(obs_shape) == 3:  # (stack, 84, 84) frames
        net: nn.Module = NatureCNN(obs_shape[0], n_actions, dueling, dueling_head, conv_padding, obs_shape[-1])
    else:
        net = mlp(int(np.prod(obs_shape)), n_actions, hidden, dueling, dueling_head)
    if init == "xavier":
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return net


def _linear(x, w, b):
    """y[k] = x[k] @ W[k] + b[k], the weight in either storage layout (see `in_out`)."""
    return torch.baddbmm(b, x, in_out(w, b.shape[-1]))


def _chain(x, layers, relu_last: bool) -> list[torch.Tensor]:
    """Linear layers with ReLU between them (and after the last if `relu_last`): [input, the
    output of each layer], the activations a backward pass needs."""
    acts = [x]
    for i, (w, b) in enumerate(layers):
        x = _linear(x, w, b)
        if relu_last or i < len(layers) - 1:
            x = x.relu_()
        acts.append(x)
    return acts


def _chain_backward(grad, layers, acts, relu_last: bool, input_grad: bool):
    """Backward through `_chain(acts[0], layers, relu_last)` given the gradient of its output ->
    (the gradient of its input, None unless `input_grad`; [weight grad, bias grad] of each layer
    in order, each weight's in its storage layout)."""
    grads: list[torch.Tensor] = []
    for i in reversed(range(len(layers))):
        (w, _), x = layers[i], acts[i]
        if relu_last or i < len(layers) - 1:
            grad = torch.ops.aten.threshold_backward(grad, acts[i + 1], 0)  # what ReLU's backward runs
        stored_in_out = w.shape[2] == grad.shape[-1]
        # x^T g as [K, in, out], or g^T x as [K, out, in]: the layout BLAS runs fastest (see in_out)
        grad_w = torch.bmm(x.transpose(1, 2), grad) if stored_in_out else torch.bmm(grad.transpose(1, 2), x)
        grads[:0] = [grad_w, grad.sum(1, keepdim=True)]
        if i == 0 and not input_grad:
            return None, grads
        grad = torch.bmm(grad, w.transpose(1, 2) if stored_in_out else w)
    return (grad if input_grad else None), grads


class _SeedMLP(torch.autograd.Function):
    """A SeedStackQ's linear layers, trunk input to Q, as one autograd node whose backward is
    `SeedStackQ.mlp_backward`: what autograd users (diagnostics, tests) backpropagate through. The
    training step calls mlp and mlp_backward itself, without a graph (agents/dqn.py)."""

    @staticmethod
    def forward(ctx, net, x, *params):
        trace = net.mlp(x)
        ctx.net, ctx.trace = net, trace
        ctx.save_for_backward(*params)  # the activations in `trace` are never modified in place
        return trace["q"]

    @staticmethod
    def backward(ctx, grad_q):
        grad_x, grads = ctx.net.mlp_backward(ctx.trace, grad_q, input_grad=ctx.needs_input_grad[1],
                                             params=ctx.saved_tensors)
        return None, grad_x, *grads


def in_out(w, out_features: int):
    """A stacked linear weight as [K, in, out], a view whatever its storage layout.

    Batched GEMMs crawl when the weight's contiguous axis is tiny (a Q head's 2-18 actions,
    dueling's value of 1: 3-7x slower than the transposed layout at 64-128 x 256 x 2-3). So a
    layer keeps its larger axis contiguous: [K, in, out] when out >= in, else [K, out, in], as
    nn.Linear stores it. (Square layers are [K, in, out], so w.shape[2] tells them apart.)
    Tensors and numpy arrays alike.
    """
    return w if w.shape[2] == out_features else w.swapaxes(1, 2)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class SeedStackQ(nn.Module):
    """K copies of one architecture, seed k's weights initialized exactly as `nets[k]`.

    Layout: a torso of layers each followed by ReLU, then one head (Q) or two (V, A) whose layers
    have ReLU between them. Linear weights are stored [K, in, out] or, when out < in, [K, out, in]
    (see `in_out`), biases [K, 1, out]; conv weights [K, out, in, kh, kw]. forward takes
    x[K, B, *obs_shape] and returns Q[K, B, A].
    """

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        ref = nets[0]
        self.k = len(nets)
        convs = [[m for m in net.modules() if isinstance(m, nn.Conv2d)] for net in nets]
        self.strides = [c.stride[0] for c in convs[0]]
        self.pads = ref.pads if isinstance(ref, NatureCNN) else []
        self.conv_w = nn.ParameterList([_stack([c[i].weight for c in convs]) for i in range(len(self.strides))])
        self.conv_b = nn.ParameterList([_stack([c[i].bias for c in convs]) for i in range(len(self.strides))])
        heads = [net.head if isinstance(net, NatureCNN) else net for net in nets]
        last = [list(h)[-1] if isinstance(h, nn.Sequential) else h for h in heads]
        self.dueling = isinstance(last[0], DuelingHead)
        self.trunk_grad_scale = last[0].trunk_grad_scale if self.dueling else 1.0
        if self.dueling:
            n_head = len(_linears(last[0]))  # 4 (streams) or 2 (linear)
            torso = [_linears(h)[:-n_head] for h in heads]
            branches = [[_linears(d.value) for d in last], [_linears(d.advantage) for d in last]]
        else:
            torso = [_linears(h)[:-1] for h in heads]
            branches = [[_linears(h)[-1:] for h in heads]]
        self.torso = self._stack_linears(torso)
        self.heads = nn.ModuleList(self._stack_linears(b) for b in branches)
        self.image = isinstance(ref, NatureCNN)
        # built once: ParameterList lookups cost more than a CartPole step's elementwise ops
        self.linear_params = [*self.torso, *(p for head in self.heads for p in head)]
        self.layers = self.layer_pairs(self.linear_params)

    @staticmethod
    def _stack_linears(per_seed: list[list[nn.Linear]]) -> nn.ParameterList:
        params = []
        for layer in zip(*per_seed):
            narrow = layer[0].out_features < layer[0].in_features
            params.append(_stack([lin.weight if narrow else lin.weight.T for lin in layer]))  # see in_out
            params.append(_stack([lin.bias[None] for lin in layer]))  # [K, 1, out]
        return nn.ParameterList(params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x[K, B, *obs] -> Q[K, B, A]."""
        if not torch.is_grad_enabled():  # no graph to record: skip the autograd node's bookkeeping
            return self.mlp(self.trunk_input(x))["q"]
        return _SeedMLP.apply(self, self.trunk_input(x), *self.linear_params)

    def trunk_input(self, x: torch.Tensor) -> torch.Tensor:
        """x[K, B, *obs] -> the first linear layer's input [K, B, features]: conv features of
        frames, or the flattened observation."""
        k, b = x.shape[:2]
        if not self.image:
            return x.reshape(k, b, -1).float()
        x = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])  # [B, K*C, H, W]
        # channels-last: oneDNN's kernels for it make a CPU update ~1.2x faster (the first layer's
        # weight gradient above all; benchmarks/bench_atari.py), same math up to float rounding
        x = x.contiguous(memory_format=torch.channels_last).float().div_(255.0)
        for w, bias, stride, (before, after) in zip(self.conv_w, self.conv_b, self.strides, self.pads):
            if after > before:  # SAME's odd pixel goes after: only it is padded by a copy, the rest inside the conv
                x = F.pad(x, (0, after - before, 0, after - before))
            x = F.relu(F.conv2d(x, w.flatten(0, 1), bias.flatten(), stride=stride, padding=before, groups=k),
                       inplace=True)
        return x.reshape(b, k, -1).transpose(0, 1)  # [K, B, features] (reshape restores C, H, W order)

    def layer_pairs(self, params) -> dict:
        """linear_params (or tensors in their order) as (weight, bias) pairs: torso, then each head."""
        pairs = list(zip(params[::2], params[1::2]))
        n, heads = len(self.torso) // 2, []
        for head in self.heads:
            heads.append(pairs[n: n + len(head) // 2])
            n += len(head) // 2
        return {"torso": pairs[: len(self.torso) // 2], "heads": heads}

    def mlp(self, x: torch.Tensor) -> dict:
        """Trunk input -> Q, keeping every layer's input and output: {"torso": activations,
        "heads": activations per head, "q": Q}; activations[0] is the input (see _chain)."""
        torso = _chain(x, self.layers["torso"], relu_last=True)
        heads = [_chain(torso[-1], head, relu_last=False) for head in self.layers["heads"]]
        if self.dueling:
            value, adv = heads[0][-1], heads[1][-1]
            q = value + adv - adv.mean(dim=-1, keepdim=True)
        else:
            q = heads[0][-1]
        return {"torso": torso, "heads": heads, "q": q}

    def mlp_backward(self, trace: dict, grad_q: torch.Tensor, input_grad: bool, params=None):
        """Backward through `mlp` given dL/dQ and its trace -> (dL/d trunk input, None unless
        `input_grad`; the gradient of each of `linear_params`, in order and layout). The kernels
        autograd would run layer by layer, so gradients are bit-identical to it, without one graph
        node per linear, ReLU and dueling op (~5% of a CartPole gradient step of 10 seeds).
        `params`: tensors standing in for linear_params (an autograd node's saved copies)."""
        layers = self.layers if params is None else self.layer_pairs(params)
        if self.dueling:  # Q = V + A - mean(A): dV = sum_a dQ, dA = dQ - sum_a dQ / |A|
            total = grad_q.sum(-1, keepdim=True)
            stream_grads = [total, grad_q - total / grad_q.shape[-1]]
        else:
            stream_grads = [grad_q]
        grad_trunk, head_grads = None, []
        for head, acts, grad in zip(layers["heads"], trace["heads"], stream_grads):
            g, grads = _chain_backward(grad, head, acts, relu_last=False, input_grad=True)
            grad_trunk = g if grad_trunk is None else grad_trunk + g
            head_grads += grads
        if self.trunk_grad_scale != 1.0:  # both streams backpropagate into the trunk (see DUELING_HEADS)
            grad_trunk = grad_trunk * self.trunk_grad_scale
        grad_x, torso_grads = _chain_backward(grad_trunk, layers["torso"], trace["torso"], relu_last=True,
                                              input_grad=input_grad)
        return grad_x, [*torso_grads, *head_grads]

    def features(self, x: torch.Tensor, hidden: list | None = None) -> torch.Tensor:
        """x[K, B, *obs] -> the shared trunk's output [K, B, width]; appends each post-ReLU
        torso activation to `hidden` when given (diagnostics count dead units there)."""
        acts = _chain(self.trunk_input(x), self.layers["torso"], relu_last=True)
        if hidden is not None:
            hidden.extend(acts[1:])
        return acts[-1]

    def streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Trunk output -> [Q] or, dueling, [V [K, B, 1], raw A [K, B, A]]."""
        return [_chain(x, head, relu_last=False)[-1] for head in self.layers["heads"]]

    def numpy_greedy(self):
        """Greedy actions for one observation per seed through numpy views of the live weights.

        Acting runs once per env step on K single observations, where torch's dispatch costs more
        than the arithmetic. The views share memory with the parameters (updated in place by the
        optimizer), so they never go stale. A dueling argmax is the advantage stream's argmax.
        None for image observations (the conv torso is torch's job).
        """
        if self.image:
            return None
        params = [p.detach().numpy() for p in [*self.torso, *self.heads[-1]]]
        layers = [(in_out(w, b.shape[-1]), b) for w, b in zip(params[::2], params[1::2])]

        def greedy(obs: np.ndarray) -> np.ndarray:
            x = np.asarray(obs, dtype=np.float32).reshape(len(obs), 1, -1)  # [K, 1, obs]
            for i, (w, b) in enumerate(layers):
                x = np.matmul(x, w) + b
                if i < len(layers) - 1:
                    np.maximum(x, 0, out=x)
            return x[:, 0].argmax(axis=1)

        return greedy


def _stack(tensors: list[torch.Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())


def seed_stack(obs_shape: tuple[int, ...], n_actions: int, hidden: tuple[int, ...], dueling: bool,
               seeds: list[int], **options: str) -> SeedStackQ:
    """K networks, seed k's initialized from torch.manual_seed(seeds[k]) alone; `options` are
    q_network's (dueling_head, conv_padding, init)."""
    nets = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):  # weights from the run's seed, not global state
            torch.manual_seed(seed)
            nets.append(q_network(obs_shape, n_actions, hidden, dueling, **options))
    return SeedStackQ(nets)
