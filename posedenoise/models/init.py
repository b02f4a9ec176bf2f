"""The study's initialisation, shared by every model."""
import torch.nn as nn


def glorot_(module: nn.Module) -> nn.Module:
    """Glorot (Xavier) uniform for every weight with more than one dimension; zeros for biases (the
    ConvLSTM's per-pixel (K, H, W) biases included); normalisation scales keep their default of one (zeroing
    them would silence the transformer). Uses torch's global RNG like any nn.init call; seeds nothing."""
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() > 1:
            nn.init.xavier_uniform_(p)
    return module
