"""A new distillation method added from outside facd: FitNet-style feature regression.

The term regresses the student's deepest tapped feature onto the teacher's with a 1x1
convolution and penalises the mean squared difference (Romero et al., "FitNets", 2015, on the
last feature before the upsampler). The method adds it to the plain L1 to the ground truth.

Import this module before training and both are known everywhere:

    python -c "import my_method, facd; ..."               # the Python API
    facd train config.yaml --out runs/fitnet --plugin my_method   # the CLI (module importable)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import facd
from facd.errors import ConfigError


@dataclass
class FitNetOptions:
    """The ``loss.fitnet`` section of a config."""

    weight: float = 0.0  # 0 switches the term off; a method gives it a weight
    tap: int = -1  # which feature tap (index into the taps; -1 = the deepest)

    def validate(self, where: str) -> None:
        if self.weight < 0:
            raise ConfigError(f"'{where}.weight' must be >= 0")


class FitNetTerm(facd.LossTerm):
    """mean (R(F_S) - F_T)^2 at one tap, R a trained 1x1 convolution; F_T detached."""

    def __init__(self, opts: FitNetOptions, env: facd.TermEnv) -> None:
        super().__init__()
        self.tap = opts.tap
        cs, ct = env.student_channels[opts.tap], env.teacher_channels[opts.tap]
        self.regressor = nn.Conv2d(cs, ct, 1)  # trained with the student, saved in its state

    def forward(self, ctx: facd.StepContext) -> torch.Tensor:
        assert ctx.feats_s is not None and ctx.feats_t is not None
        fs, ft = ctx.feats_s[self.tap], ctx.feats_t[self.tap].detach()
        return (self.regressor(fs).float() - ft.float()).square().mean()

    def describe(self) -> str:
        return f"fitnet[tap {self.tap}, 1x1 regressor, MSE]"


@facd.register_term(
    "fitnet",
    options=FitNetOptions,  # a new `loss:` section, named like the term
    needs=facd.Needs(teacher_features=True, student_features=True),
    summary="FitNet: MSE between a 1x1 regression of the student's feature and the teacher's",
)
def build_fitnet(opts, env: facd.TermEnv) -> facd.LossTerm:
    return FitNetTerm(opts.fitnet, env)


facd.register_method(
    facd.MethodDef(
        "fitnet",
        "FitNet: L1_GT + 1e-3 MSE of the regressed deepest student feature to the teacher's",
        {"pixel": {"gt_weight": 1.0}, "fitnet": {"weight": 1e-3}},
        paper_range=1,  # weights as written, on [0, 1] images
        source="examples/my_method.py",
        label="FitNet",
    )
)
