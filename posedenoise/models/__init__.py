"""The denoisers, by name. A new model is one file and one line here.

Every model takes heatmaps (B, T, K, H, W) and has `output_kind`: "heatmaps" (returns (B, T, K, H, W)) or
"coords" (returns (B, T, K, 2) in heatmap pixels), the one thing the trainer branches on. A model without
trainable parameters (identity, the classical filters) is only evaluated; a filter's few hyper-parameters
are chosen on the validation split (posedenoise.evaluation.fit_filters).
"""
from .biconvlstm import BiConvLSTMConcat, BiConvLSTMSum
from .conv3d import Conv3d
from .deciwatch import DeciWatch
from .filters import FILTERS
from .identity import Identity

MODELS = {
    "conv3d": Conv3d,
    "deciwatch": DeciWatch,
    "biconvlstm-sum": BiConvLSTMSum,
    "biconvlstm-concat": BiConvLSTMConcat,
    "identity": Identity,
    **FILTERS,  # classical temporal filters (models/filters.py): baselines, nothing to train
}


def build(name: str, **options):
    """A fresh model by registry name, e.g. build("deciwatch", window=9); options go to its constructor
    (all have defaults: num_keypoints=25, window=5, size=56). Unknown names raise ValueError."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}") from None
    return cls(**options)
