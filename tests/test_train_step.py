"""The per-step path of training (batch -> noisy pair, or noise + inputs -> model -> loss -> backward) makes no
host round trip, and evaluation reads its device counters once, whatever the number of batches.

CPU proxies for "no device-to-host sync on CUDA":
- the step runs eagerly on the meta device (tensors without data: what a GPU step looks like to the host)
  under a dispatch mode that records every value read (aten._local_scalar_dense: .item(), int(t), bool(t))
  and every copy between the host and the device;
- the step compiles with torch.compile(fullgraph=True): a graph break is where a sync would be;
- the tables the kernels read (noise thresholds, profiles, PCK parameters) are built and uploaded once.
"""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from posedenoise import ops
from posedenoise.data import Batches, open_data
from posedenoise.evaluation import SETUPS, evaluate, masked_mse, model_batch
from posedenoise.kernels import pck as triton_pck
from posedenoise.models import build

aten = torch.ops.aten
MODELS = ["conv3d", "deciwatch"]
NOISE = dict(k=1.0, sigma_choices=SETUPS[1]["sigma_choices"], seed=1)


class HostTraffic(TorchDispatchMode):
    """Records what would make a GPU wait for the host, or the host feed it, and lets the run go on:
    reads return 0, copies of meta data to the host return zeros."""

    def __init__(self):
        super().__init__()
        self.events = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default:
            self.events.append(f"read of a {args[0].device} value")
            return 0
        if func in (aten._to_copy.default, aten.copy_.default):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = args[0].device if func is aten.copy_.default else torch.device(kwargs.get("device") or src.device)
            if src.device != dst:
                self.events.append(f"copy {src.device} -> {dst}")
                if src.device.type == "meta":
                    return torch.zeros(src.shape, dtype=kwargs.get("dtype") or src.dtype, device=dst)
        return func(*args, **kwargs)


def _data():
    return open_data("synthetic", step=1, num_windows=120)


def _batch(data, device):
    coords, visible, wid = next(iter(Batches(data, "train", 4, "cpu", epoch=1, seed=1, shuffle=True,
                                             drop_last=True)))
    return coords.to(device), visible.to(device), wid.to(device)


def _step(net, coords, visible, wid, epoch):
    x, y = model_batch(coords, visible, wid, net.output_kind, epoch=epoch, **NOISE)
    return masked_mse(net(x), y, coords, visible, net.output_kind)


@pytest.mark.parametrize("name", MODELS)
def test_a_training_step_reads_nothing_from_the_device_and_uploads_nothing(name):
    torch.manual_seed(0)
    coords, visible, wid = _batch(_data(), "meta")
    net = build(name).to("meta")
    _step(net, coords, visible, wid, 0).backward()         # the first step may upload the tables
    with HostTraffic() as traffic:
        for epoch in (1, 2, 16):                           # and no later step, in any epoch
            _step(net, coords, visible, wid, epoch).backward()
    assert traffic.events == []


@pytest.mark.parametrize("name", MODELS)
def test_evaluation_reads_the_device_a_fixed_number_of_times(name):
    """Loss and PCK sums stay on the device and are read once after the loop: the reads do not grow with
    the number of batches (they did: a float(loss) and a copy of the PCK tally per batch)."""
    data = _data()
    net = build(name).to("meta")
    reads = []
    for batch_size in (20, 4):        # 1 and 5 batches of the 20 validation windows
        with HostTraffic() as traffic:
            evaluate(net, net.output_kind, data, "val", torch.device("meta"), batch_size=batch_size, **NOISE)
        # (each batch is uploaded: it is born on the host; what matters is what comes back)
        reads.append([e for e in traffic.events if e in ("read of a meta value", "copy meta -> cpu")])
    assert len(reads[0]) == len(reads[1]) <= 4, reads   # per label (model, identity): its loss sums, its PCK


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_a_training_step_compiles_as_one_graph(name):
    torch.manual_seed(0)
    coords, visible, wid = _batch(_data(), "cpu")
    net = build(name)
    # aot_eager: dynamo's graph capture (fullgraph: a graph break raises) plus the fake implementations of the
    # custom ops and the backward graph, without inductor's code generation (minutes on 2 cores).
    compiled = torch.compile(lambda c, v, w: _step(net, c, v, w, 1), backend="aot_eager", fullgraph=True)
    net.eval()  # dropout off: the compiled loss is the eager one (up to the decomposed transformer's rounding)
    with torch.no_grad():
        torch.testing.assert_close(compiled(coords, visible, wid), _step(net, coords, visible, wid, 1), rtol=1e-5,
                                   atol=0)
    net.train()
    loss = compiled(coords, visible, wid)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_kernel_tables_are_built_once_per_setting_and_device():
    """What the kernels read besides the batch (noise thresholds, sigma values, profiles; the PCK alphas) is
    cached per setting and device: on a GPU a step uploads nothing but its batch."""
    coords, visible, wid = (t[:1, :2] if t.dim() > 1 else t[:1] for t in _batch(_data(), "cpu"))  # the interpreter is slow
    backends = [b for b in ("cpp", "triton") if ops.available_backends()["available"][b]]
    gt = coords.float()
    for backend in backends:
        for epoch in range(3):
            if epoch == 1:
                built = (ops._noise_tables.cache_info().misses, triton_pck._params.cache_info().misses)
            ops.noisy_pair(coords, visible, wid, epoch=epoch, backend=backend, **NOISE)
            x, _ = ops.noisy_pair(coords, visible, wid, epoch=epoch, targets=False, backend=backend, **NOISE)
            ops.pck_from_heatmaps(x, gt, visible, backend=backend)
        assert (ops._noise_tables.cache_info().misses, triton_pck._params.cache_info().misses) == built, backend
