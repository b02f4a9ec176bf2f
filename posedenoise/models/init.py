"""The study's initialisation, shared by every model."""
import torch.nn as nn


def glorot_(module: nn.Module) -> nn.Module:
    """Glorot (Xavier) uniform for every parameter with more than one dimension, zeros for the rest
    (biases). Uses torch's global RNG like any nn.init call; seeds nothing."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
        else:
            nn.init.zeros_(p)
    return module
