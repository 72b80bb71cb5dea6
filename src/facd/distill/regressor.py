"""FACD's deep regressor (DR): 1x1 convs with PReLU between them, student -> teacher channels."""

from __future__ import annotations

from torch import nn


class DeepRegressor(nn.Sequential):
    """``layers`` 1x1 convs: C_S -> W -> ... -> C_T, PReLU between, none after the last.

    The paper states five 1x1 convs with PReLU; the hidden width is not stated, so it defaults to
    the teacher's channel count.
    """

    def __init__(
        self, in_channels: int, out_channels: int, layers: int = 5, width: int = 0
    ) -> None:
        width = width or out_channels
        mods: list[nn.Module] = []
        c = in_channels
        for i in range(layers):
            last = i == layers - 1
            mods.append(nn.Conv2d(c, out_channels if last else width, 1))
            if not last:
                mods.append(nn.PReLU())
            c = width
        super().__init__(*mods)
