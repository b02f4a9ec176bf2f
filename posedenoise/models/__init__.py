"""The denoisers, by name. A new model is one file and one line here.

Every model takes heatmaps (B, T, K, H, W) and has `output_kind`: "heatmaps" (returns (B, T, K, H, W)) or
"coords" (returns (B, T, K, 2) in heatmap pixels), the one thing the trainer branches on. A model with
`input_kind = "coords"` also takes (x, y, present) triples (B, T, K, 3) (models/inputs.py), which the trainer
feeds it instead of rendering maps only for their argmax. A model's RECIPE (a dict: batch_size, epochs,
schedule) replaces the study's training defaults for it; flags still override each. A model without
trainable parameters (identity, the classical filters) is only evaluated; a filter's few hyper-parameters
are chosen on the validation split (posedenoise.evaluation.fit_filters).
"""
import inspect

from .biconvlstm import BiConvLSTMConcat, BiConvLSTMSum
from .conv3d import Conv3d
from .deciwatch import DeciWatch
from .filters import FILTERS
from .identity import Identity
from .pose_mlp import PoseMLP

MODELS = {
    "pose-mlp": PoseMLP,  # posedenoise's own: starts as the mean filter, learns a whole-pose residual
    "conv3d": Conv3d,
    "deciwatch": DeciWatch,
    "biconvlstm-sum": BiConvLSTMSum,
    "biconvlstm-concat": BiConvLSTMConcat,
    "identity": Identity,
    **FILTERS,  # classical temporal filters (models/filters.py): baselines, nothing to train
}


# Set by the data and the trainer, or by the registry name (biconvlstm-sum / -concat), not by --model-arg.
_FIXED = ("num_keypoints", "window", "size", "merge")


def model_options(name: str, pairs) -> dict:
    """--model-arg NAME=VALUE pairs -> constructor keyword arguments of model `name`, each converted to the
    type of the constructor's default (int, float, bool; "none" for None), then checked by building the model
    (its own checks, e.g. DeciWatch's interval must divide window - 1). InputError names the option."""
    from ..errors import InputError
    params = {n: p for n, p in inspect.signature(MODELS[name].__init__).parameters.items()
              if n != "self" and n not in _FIXED and p.kind == p.POSITIONAL_OR_KEYWORD}
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in params:
            raise InputError(f"--model-arg {pair}: {name} has no options" if not params else
                             f"--model-arg {pair}: expected NAME=VALUE with NAME one of {', '.join(sorted(params))} "
                             f"(the options of {name})")
        if key in out:
            raise InputError(f"--model-arg {pair}: {key} is given twice")
        default = params[key].default
        try:
            out[key] = _value(text, default, params[key].annotation)
        except ValueError:
            kind = "true or false" if isinstance(default, bool) else type(default).__name__ \
                if isinstance(default, (int, float)) else "a number"
            raise InputError(f"--model-arg {pair}: expected {kind} for {key}") from None
    try:
        build(name, **out)
    except (ValueError, TypeError) as e:
        raise InputError(f"--model-arg {' '.join(pairs)}: {e}") from None
    return out


def _value(text: str, default, annotation):
    """text as the type of a constructor default (None: as annotated; else an int or a float, as written)."""
    if annotation in (str, "str") or isinstance(default, str):
        return text
    if text.lower() == "none":
        return None
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(text)
        return text.lower() in ("true", "1")
    if isinstance(default, float):
        return float(text)
    if isinstance(default, int):
        return int(text)
    return float(text) if any(c in text for c in ".eEn") else int(text)


def from_config(config: dict):
    """The model a run's config describes: its name and --model-arg options (a run from before options
    existed has none)."""
    return build(config["model"], **model_options(config["model"], config.get("model_arg") or []))


def build(name: str, **options):
    """A fresh model by registry name, e.g. build("deciwatch", window=9); options go to its constructor
    (all have defaults: num_keypoints=25, window=5, size=56). Unknown names raise ValueError."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}") from None
    return cls(**options)
