"""The denoisers, by name. A new model is one file and one line here.

Every model takes heatmaps (B, T, K, H, W) and has `output_kind`: "heatmaps" (returns (B, T, K, H, W)) or
"coords" (returns (B, T, K, 2) in heatmap pixels), the one thing the trainer branches on.
"""
from .biconvlstm import BiConvLSTMConcat, BiConvLSTMSum
from .conv3d import Conv3d
from .deciwatch import DeciWatch
from .identity import Identity

MODELS = {
    "conv3d": Conv3d,
    "deciwatch": DeciWatch,
    "biconvlstm-sum": BiConvLSTMSum,
    "biconvlstm-concat": BiConvLSTMConcat,
    "identity": Identity,
}


def build(name: str, **options):
    """A fresh model by registry name, e.g. build("deciwatch", window=9); options go to its constructor
    (all have defaults: num_keypoints=25, window=5, size=56). Unknown names raise ValueError."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}") from None
    return cls(**options)
