"""Triton kernels, one file per operation; installed as posedenoise.kernels. Call them via posedenoise.ops."""
