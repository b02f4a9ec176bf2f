"""Every Triton launch that training, evaluation and DeciWatch's forward make compiles for a real sm_80 and
sm_90 GPU, bound and specialised by Triton's own launch path for the actual argument values
(tests/triton_launch.py: no GPU, no hand-written signature), and the machine code is what the numerics and
the speed rely on: no spills, 16-byte stores of the maps, no approximate or fused floating-point math."""
import collections
import concurrent.futures

import pytest

from conftest import terminal_note

pytest.importorskip("triton")
pytestmark = pytest.mark.slow

CCS = (80, 90)


@pytest.fixture(scope="module")
def launches():
    """cc -> (records, failures), both targets compiled at once (one subprocess each)."""
    from triton_launch import run_in_subprocess
    with concurrent.futures.ThreadPoolExecutor(len(CCS)) as pool:
        out = dict(zip(CCS, pool.map(run_in_subprocess, CCS)))
    rows = collections.defaultdict(list)
    for cc, (records, _) in out.items():
        for r in records:
            rows[(r["kernel"].split("_kernel")[0].lstrip("_"), cc)].append(r["registers"])
    terminal_note("Triton kernels compiled as launched (tests/test_triton_launch.py): registers, 0 spills\n" + "\n".join(
        f"  {name:14s} sm_{cc}: {len(regs):3d} specialisations, {min(regs)}-{max(regs)} registers"
        for (name, cc), regs in sorted(rows.items())))
    return out


@pytest.mark.parametrize("cc", CCS)
def test_every_launch_compiles(launches, cc):
    records, failures = launches[cc]
    assert not failures, f"{len(failures)} launches fail to compile for sm_{cc}, e.g.:\n" + "\n".join(
        f"{f['failed']}: {f['error']}" for f in failures[:10])
    assert {r["kernel"] for r in records} == {"_heatmap_kernel", "_argmax_pck_kernel"}


@pytest.mark.parametrize("cc", CCS)
def test_the_launches_are_specialised_as_a_real_launch_would(launches, cc):
    """The harness is faithful, not a fixed signature: the values that training passes really reach
    Triton's specialisation (this is what turned epoch == 1 into a Python int before)."""
    records, _ = launches[cc]
    heat = [r for r in records if r["kernel"] == "_heatmap_kernel"]
    assert any(r["constants"].get("T") == 1 for r in heat)             # T = 1 became a compile-time constant
    assert any(r["constants"].get("K") == 1 for r in heat)
    assert any("K" in r["divisible_16"] for r in heat)                  # K = 16 * m in render mode
    assert {r["signature"]["seed"] for r in heat} == {"i32", "i64"}     # seeds >= 2**31 are 64-bit
    # seed and epoch are never specialised: one kernel serves every epoch
    assert not any({"seed", "epoch"} & (set(r["constants"]) | set(r["divisible_16"])) for r in heat)
    dtypes = {r["signature"]["maps_ptr"] for r in heat}
    assert dtypes == {"*fp32", "*fp16", "*bf16"}, dtypes
    modes = {(r["constants"]["NOISE"], r["constants"]["INPUTS"], r["constants"]["TARGETS"]) for r in heat}
    assert modes == {(False, True, False), (True, False, False), (True, True, False), (True, True, True)}, modes


@pytest.mark.parametrize("cc", CCS)
def test_no_spills_and_bounded_registers(launches, cc):
    for r in launches[cc][0]:
        assert r["local_bytes"] == 0 and r["stack_bytes"] == 0, r
        assert r["registers"] <= 128, r


@pytest.mark.parametrize("cc", CCS)
def test_maps_are_written_with_16_byte_stores(launches, cc):
    for r in launches[cc][0]:
        if r["kernel"] != "_heatmap_kernel":
            continue
        maps = int(r["constants"]["INPUTS"]) + int(r["constants"]["TARGETS"])     # maps each program writes
        wide = [b for b in r["store_bytes"] if b > 4]
        # all map stores are 16 bytes; the only narrow ones are the noisy (x, y) and sigma_in (pair mode)
        assert set(wide) <= {16} and len(r["store_bytes"]) - len(wide) <= 3, r
        assert len(wide) >= maps * (4 if "16" in r["signature"]["maps_ptr"] else 8), r


@pytest.mark.parametrize("cc", CCS)
def test_no_approximate_or_fused_floating_point(launches, cc):
    """No ex2.approx / div.full (the heatmaps read host-computed profiles; nothing transcendental runs on the
    GPU), no fused multiply-add (the PCK distance is rounded twice, as on the CPU), and half outputs round to
    nearest even (fp16 by cvt.rn; bf16 on the bits, see kernels/heatmaps._round_to)."""
    for r in launches[cc][0]:
        assert r["approx"] == 0 and r["div_full"] == 0 and r["ex2"] == 0, r
        assert r["fma_float"] == 0 and r["enable_fp_fusion"] is False, r
        assert set(r["cvt_to_16bit"]) <= {"rn"}, r
        if r["kernel"] == "_argmax_pck_kernel":
            torso = r["constants"].get("PCK") and r["constants"].get("MODE") == 0
            assert r["sqrt_rn_f64"] == (2 if torso else 0), r   # correctly rounded, as the reference's
            assert r["vector_loads_16B"] >= 4, r                # the map is read with 16-byte loads


@pytest.mark.parametrize("cc", CCS)
def test_measured_noise_laws_compile_their_own_table_sizes(launches, cc):
    """A measured law (noise.json) passes table sizes and lows the simulated one never does, and Triton
    specialises on them: one shift or sigma threshold and a shift_low of 1 become constants, 0 and 16 are
    marked divisible. Each of those kernels is compiled here (triton_launch.EMPIRICAL)."""
    heat = [r for r in launches[cc][0] if r["kernel"] == "_heatmap_kernel" and "empirical" in r["first_launch"]]
    assert heat, "no kernel specialisation is particular to a measured noise law"
    for name in ("n_shift_thr", "shift_low", "n_sigma_thr"):
        assert any(r["constants"].get(name) == 1 for r in heat), name
    for name in ("n_shift_thr", "shift_low", "n_sigma_thr"):
        assert any(name in r["divisible_16"] for r in heat), name


@pytest.mark.parametrize("cc", CCS)
def test_drifting_laws_compile_the_drift_specialisation(launches, cc):
    """A law with drift (posedenoise.noise.Drift) compiles the pair kernel with DRIFT in every mode (noise
    only, inputs, inputs and targets), its thresholds keep and emit as runtime values of either width, never
    specialised (one kernel serves every rho and share); without drift DRIFT is off. Spills and registers:
    test_no_spills_and_bounded_registers, over these too (triton_launch.DRIFTS)."""
    heat = [r for r in launches[cc][0] if r["kernel"] == "_heatmap_kernel"]
    drift = [r for r in heat if r["constants"].get("DRIFT")]
    assert drift and all(" drift " in r["first_launch"] for r in drift)
    assert not any(r["constants"].get("DRIFT") for r in heat if " drift " not in r["first_launch"])
    modes = {(r["constants"]["INPUTS"], r["constants"]["TARGETS"]) for r in drift}
    assert modes == {(False, False), (True, False), (True, True)}, modes
    assert not any({"keep", "emit"} & (set(r["constants"]) | set(r["divisible_16"])) for r in heat)
    for name in ("keep", "emit"):
        assert {r["signature"][name] for r in drift} == {"i32", "i64"}, name
