"""Adam as torch.optim.Adam(fused=True) computes it, without torch.optim around the kernel.

The update is torch's own fused kernel on moments and step counts kept here, so weights and
moments match torch.optim.Adam bit for bit (tests/test_dqn_math.py). What it drops: torch.optim's
per-call bookkeeping and the torch._dynamo import its constructor triggers (~1 s per process),
both paid for nothing by a training loop of tiny steps. state_dict() is torch.optim.Adam's
format, so a checkpoint loads into either.
"""
from __future__ import annotations

import torch


class Adam:
    def __init__(self, params: list[torch.Tensor], lr: float, eps: float, betas: tuple[float, float] = (0.9, 0.999)):
        self.params = params
        self.hyper = dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=0.0)
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        # one step count, as fused Adam keeps it (a float tensor), shared by every parameter: all step
        # together, and one add a step costs a quarter of a foreach add over six counts
        self.step_count = torch.zeros((), dtype=torch.float32, device=params[0].device)
        self.steps = [self.step_count] * len(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.step_count.add_(1)
        torch._fused_adam_(self.params, [p.grad for p in self.params], self.exp_avg, self.exp_avg_sq, [],
                           self.steps, amsgrad=False, maximize=False, grad_scale=None, found_inf=None,
                           **self.hyper)

    def state_dict(self) -> dict:
        h = self.hyper
        started = self.step_count.item() > 0  # torch.optim.Adam has no state before its first step
        return {  # a count per parameter, each its own tensor, as torch.optim.Adam keeps them
            "state": {i: {"step": self.step_count.clone(), "exp_avg": m, "exp_avg_sq": v}
                      for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))} if started else {},
            "param_groups": [{"lr": h["lr"], "betas": (h["beta1"], h["beta2"]), "eps": h["eps"],
                              "weight_decay": h["weight_decay"], "amsgrad": False, "maximize": False,
                              "foreach": None, "capturable": False, "differentiable": False, "fused": True,
                              "params": list(range(len(self.params)))}],
        }

    def load_state_dict(self, state: dict) -> None:
        """Either format's state (this class's or torch.optim.Adam's), copied into place."""
        saved = state["state"]  # empty when saved before the first step
        with torch.no_grad():
            if not saved:
                for t in (self.step_count, *self.exp_avg, *self.exp_avg_sq):
                    t.zero_()
                return
            self.step_count.copy_(torch.as_tensor(saved[0]["step"]))  # every parameter's count is the same
            for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
                m.copy_(saved[i]["exp_avg"])
                v.copy_(saved[i]["exp_avg_sq"])
