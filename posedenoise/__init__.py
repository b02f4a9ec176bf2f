"""posedenoise: pretrain temporal pose-heatmap denoisers on heatmaps rendered on the fly.

Architecture: posedenoise.data (keypoint caches, windows) -> posedenoise.ops (noise + rendering kernels)
-> posedenoise.models -> posedenoise.train / evaluate / experiments / denoise.
"""
from .install import build_status  # noqa: F401  (below ops, which reports it; here for users)

__version__ = "0.1.0"


def build_info() -> dict:
    """Which backends can run here, which one each device uses by default, and why others cannot.

    python -c "import posedenoise; print(posedenoise.build_info())"
    """
    from .ops import available_backends
    import torch
    info = available_backends()
    info["torch"] = torch.__version__
    info["cuda"] = torch.cuda.is_available()
    if info["available"]["cpp"]:
        from . import _C
        info["cpp_argmax_simd"] = _C.argmax_simd()
    return info
