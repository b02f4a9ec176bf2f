"""Readers: Penn Action against the real label files, BRACE and the generic format against small files
written here in exactly their documented formats, and bad input (each a DataError naming the file)."""
import csv
import json

import numpy as np
import pytest
import scipy.io

from posedenoise.data import DataError
from posedenoise.data import brace, generic, penn_action
from posedenoise.layout import POSE25

# Written out here, independently of posedenoise.layout's tables.
PENN_JOINTS = ["nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]   # head -> nose
COCO_JOINTS = ["nose", None, None, "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
               "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
               "left_ankle", "right_ankle"]                                                           # eyes dropped


# --- Penn Action, real files ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def penn(request):
    from conftest import PENN_ACTION
    if not (PENN_ACTION / "labels").is_dir():
        pytest.skip(f"real Penn Action labels not found at {PENN_ACTION}")
    with open(PENN_ACTION / "penn_action_index.csv", newline="") as f:
        index = {r["video_id"]: r for r in csv.DictReader(f)}
    videos = penn_action.read_folder(str(PENN_ACTION))
    return PENN_ACTION, {v.name: v for v in videos}, index


def test_penn_action_totals_and_official_split(penn):
    _, videos, index = penn
    assert len(videos) == 2326
    assert sum(len(v.xy) for v in videos.values()) == 163_841
    splits = [v.official_split for v in videos.values()]
    assert splits.count("train") == 1258 and splits.count("test") == 1068
    assert sum(len(v.xy) for v in videos.values() if v.official_split == "train") == 87_543
    assert set(index) == set(videos)
    for name, row in index.items():
        v = videos[name]
        assert v.official_split == {"1": "train", "-1": "test"}[row["train"]], name
        assert len(v.xy) == len(v.visible) == int(row["nframes"]), name
        assert v.source == "penn_action" and v.xy.dtype == np.float32 and v.visible.dtype == bool


@pytest.mark.parametrize("name", ["0013", "0052", "1037", "0623", "1154", "1865", "0001"])
def test_penn_action_edge_case_files_match_loadmat(penn, name):
    folder, videos, index = penn
    m = scipy.io.loadmat(folder / "labels" / f"{name}.mat")
    v = videos[name]
    T = int(np.asarray(m["nframes"]).ravel()[0])
    assert v.xy.shape == (T, 25, 2) and v.visible.shape == (T, 25)
    if name in ("0013", "0052", "1037"):
        assert m["x"].dtype.kind == "u" and index[name]["xy_dtype"].startswith("uint")
    if name == "0623":
        assert T == 564 and m["nframes"].dtype == np.uint16
    if name in ("1154", "1865"):
        assert m["bbox"].shape[0] == T - 1 == int(index[name]["bbox_rows"])
    for j, target in enumerate(PENN_JOINTS):
        k = POSE25.index(target)
        np.testing.assert_array_equal(v.xy[:, k, 0], m["x"][:, j].astype(np.float32))
        np.testing.assert_array_equal(v.xy[:, k, 1], m["y"][:, j].astype(np.float32))
        np.testing.assert_array_equal(v.visible[:, k], m["visibility"][:, j] == 1)
    others = [k for k, n in enumerate(POSE25) if n not in PENN_JOINTS]
    assert not v.visible[:, others].any()


def test_penn_action_invisible_joints_carry_stale_coordinates_but_are_missing(penn):
    folder, videos, _ = penn
    m = scipy.io.loadmat(folder / "labels" / "0001.mat")
    hidden = m["visibility"] == 0
    assert hidden.any() and (m["x"][hidden] != 0).any()             # stale coordinates exist in the file
    v = videos["0001"]
    cols = [POSE25.index(n) for n in PENN_JOINTS]
    assert not v.visible[:, cols][hidden].any()


def test_penn_action_bad_input(tmp_path):
    with pytest.raises(DataError, match="nowhere.*no such folder"):
        penn_action.read_folder(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / "labels").mkdir(parents=True)
    with pytest.raises(DataError, match="labels: no .mat"):
        penn_action.read_folder(str(tmp_path / "empty"))
    lab = tmp_path / "p" / "labels"
    lab.mkdir(parents=True)
    good = {"x": np.ones((6, 13)), "y": np.ones((6, 13)), "visibility": np.ones((6, 13), np.uint8),
            "nframes": np.array([[6]], np.uint8), "train": np.array([[1]], np.int32)}
    scipy.io.savemat(lab / "0001.mat", good)
    data = (lab / "0001.mat").read_bytes()
    (lab / "0002.mat").write_bytes(data[: len(data) // 2])                     # truncated
    with pytest.raises(DataError, match="0002.mat: not a readable .mat"):
        penn_action.read_folder(str(tmp_path / "p"))
    scipy.io.savemat(lab / "0002.mat", {**good, "y": np.ones((6, 12))})
    with pytest.raises(DataError, match=r"0002.mat: .*y \(6, 12\)"):
        penn_action.read_video(str(lab / "0002.mat"))
    scipy.io.savemat(lab / "0002.mat", {k: v for k, v in good.items() if k != "visibility"})
    with pytest.raises(DataError, match="0002.mat: missing field 'visibility'"):
        penn_action.read_video(str(lab / "0002.mat"))
    scipy.io.savemat(lab / "0002.mat", {**good, "nframes": np.array([[7]], np.uint8)})
    with pytest.raises(DataError, match="0002.mat: nframes 7"):
        penn_action.read_video(str(lab / "0002.mat"))


# --- BRACE, small files in the documented format ----------------------------------------------------

def coco_frame(rng, x0=100.0, y0=200.0):
    kp = np.column_stack([x0 + rng.uniform(0, 300, 17), y0 + rng.uniform(0, 500, 17), rng.uniform(0.3, 1, 17)])
    return kp


def write_segment(path, vid, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {f"{vid}/img-{fid:06d}.png": {"box": [1.0, 2.0, 3.0, 4.0, 0.9], "keypoints": kp.tolist()}
           for fid, kp in frames.items()}
    path.write_text(json.dumps(doc))


@pytest.fixture
def brace_dir(tmp_path):
    rng = np.random.default_rng(0)
    kp = {f: coco_frame(rng) for f in range(0, 13)}
    kp[2][:, 0] = 123.0                                       # zero width: broken
    dup = coco_frame(rng)                                     # the second segment's copy of frame 4 differs
    root = tmp_path / "brace"
    seg = root / "dataset" / "2011" / "vidA"
    write_segment(seg / "vidA_0-4_toprock.json", "vidA", {f: kp[f] for f in range(0, 5)})
    write_segment(seg / "vidA_4-7_powermove.json", "vidA", {4: dup, **{f: kp[f] for f in range(5, 8)}})
    write_segment(seg / "vidA_10-12_footwork.json", "vidA", {f: kp[f] for f in range(10, 13)})
    write_segment(root / "dataset" / "2013" / "vidB" / "vidB_0-5_toprock.json", "vidB",
                  {f: coco_frame(rng) for f in range(6)})
    manual = np.column_stack([np.arange(17) * 10.0 + 50, np.arange(17) * 5.0 + 60, np.ones(17)])
    man = root / "manual_keypoints" / "2011" / "vidA"
    man.mkdir(parents=True)
    np.savez(man / "img-000003.npz", coco_joints2d=manual)
    np.savez(man / "img-000099.npz", coco_joints2d=manual)   # no segment holds frame 99: ignored
    ann = root / "annotations"
    ann.mkdir()
    (ann / "sequences.csv").write_text("video_id,seq_idx,start_frame,end_frame,dancer,dancer_id,year,uid\n"
                                       "vidA,0,0,12,x,1,2011,vidA.0\nvidB,0,0,5,y,2,2013,vidB.0\n")
    (ann / "sequences_train.csv").write_text("video_id,seq_idx,uid\nvidA,0,vidA.0\n")
    (ann / "sequences_test.csv").write_text("video_id,seq_idx,uid\nvidB,0,vidB.0\n")
    return root, kp, manual


def test_brace_reader_joins_segments_overrides_skips_and_splits_runs(brace_dir):
    root, kp, manual = brace_dir
    videos = {v.name: v for v in brace.read_folder(str(root))}
    assert sorted(videos) == ["vidA/000000-000007", "vidA/000010-000012", "vidB/000000-000005"]
    a, a2 = videos["vidA/000000-000007"], videos["vidA/000010-000012"]
    assert len(a.xy) == 8 and len(a2.xy) == 3 and len(videos["vidB/000000-000005"].xy) == 6
    assert a.source == "brace" and a.official_split == "train" and videos["vidB/000000-000005"].official_split == "test"
    for f in range(8):
        want = manual[:, :2] if f == 3 else kp[f][:, :2]      # frame 4: the first segment's copy
        for j, target in enumerate(COCO_JOINTS):
            if target is None:
                continue
            k = POSE25.index(target)
            np.testing.assert_allclose(a.xy[f, k], want[j], rtol=0, atol=1e-4)
            assert a.visible[f, k] == (f != 2)                # frame 2 is broken: kept, all missing
    mapped = [POSE25.index(t) for t in COCO_JOINTS if t]
    others = [k for k in range(25) if k not in mapped]
    assert not a.visible[:, others].any() and a.visible[0, mapped].all()
    np.testing.assert_allclose(a2.xy[:, POSE25.index("nose")], np.stack([kp[f][0, :2] for f in (10, 11, 12)]),
                               atol=1e-4)


def test_brace_bad_input(brace_dir, tmp_path):
    root, _, _ = brace_dir
    with pytest.raises(DataError, match="no such folder"):
        brace.read_folder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no segment files"):
        brace.read_folder(str(tmp_path / "empty"))
    seg = root / "dataset" / "2011" / "vidA" / "vidA_0-4_toprock.json"
    text = seg.read_text()
    seg.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="vidA_0-4_toprock.json: not a readable JSON"):
        brace.read_folder(str(root))
    doc = json.loads(text)
    doc["vidA/img-000001.png"]["keypoints"] = doc["vidA/img-000001.png"]["keypoints"][:16]
    seg.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"vidA_0-4_toprock.json: frame 'vidA/img-000001.png' .*\(16, 3\)"):
        brace.read_folder(str(root))
    seg.write_text(json.dumps({"vidA/img-000001.png": {"box": [0, 0, 1, 1, 1]}}))
    with pytest.raises(DataError, match="no field 'keypoints'"):
        brace.read_folder(str(root))
    seg.write_text(text)
    np.savez(root / "manual_keypoints" / "2011" / "vidA" / "img-000003.npz", joints=np.zeros((17, 3)))
    with pytest.raises(DataError, match="img-000003.npz: missing field 'coco_joints2d'"):
        brace.read_folder(str(root))


# --- the generic format ------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["npz", "json"])
def test_generic_round_trip_maps_through_the_layout(tmp_path, ext):
    rng = np.random.default_rng(1)
    seq = np.concatenate([rng.uniform(0, 500, (7, 17, 2)), rng.random((7, 17, 1)) > 0.3], -1)   # (F, 17, 3)
    seq[2, 5, 0] = np.nan                                      # a non-finite coordinate: missing
    path = str(tmp_path / f"mine.{ext}")
    if ext == "npz":
        np.savez(path, layout=np.array("coco17"), clip=seq)
    else:
        with open(path, "w") as f:
            json.dump({"layout": "coco17", "videos": {"clip": seq.tolist()}}, f)   # NaN is written as NaN
    (v,) = generic.read_file(path)
    assert v.name == "mine/clip" and v.source == "generic" and v.xy.shape == (7, 25, 2)
    for j, target in enumerate(COCO_JOINTS):
        if target is None:
            continue
        k = POSE25.index(target)
        finite = np.isfinite(seq[:, j, :2]).all(-1)
        np.testing.assert_allclose(v.xy[finite, k], seq[finite, j, :2], rtol=1e-6)
        np.testing.assert_array_equal(v.visible[:, k], (seq[:, j, 2] > 0) & finite)
    assert not v.visible[2, POSE25.index("left_shoulder")]


def test_generic_openpose_big_toe_is_foot_index(tmp_path):
    seq = np.zeros((3, 25, 3))
    seq[..., 2] = 1
    seq[:, 19, :2] = (11.0, 22.0)                              # OpenPose BODY_25 19 = left_big_toe
    generic.write_file(str(tmp_path / "op.npz"), "openpose25", {"a": seq})
    (v,) = generic.read_file(str(tmp_path / "op.npz"))
    np.testing.assert_array_equal(v.xy[:, POSE25.index("left_foot_index")], [[11, 22]] * 3)
    assert v.visible[:, POSE25.index("left_foot_index")].all() and not v.visible[:, POSE25.index("left_pinky")].any()


def test_generic_bad_input(tmp_path):
    with pytest.raises(DataError, match="nope.npz: no such file"):
        generic.read_file(str(tmp_path / "nope.npz"))
    np.savez(tmp_path / "lay.npz", layout=np.array("coco18"), a=np.zeros((3, 17, 3)))
    with pytest.raises(DataError, match="lay.npz: field 'layout': unknown keypoint layout 'coco18'"):
        generic.read_file(str(tmp_path / "lay.npz"))
    np.savez(tmp_path / "shape.npz", layout=np.array("coco17"), a=np.zeros((3, 13, 3)))
    with pytest.raises(DataError, match=r"shape.npz: video 'a' has shape \(3, 13, 3\), expected \(F, 17, 3\)"):
        generic.read_file(str(tmp_path / "shape.npz"))
    np.savez(tmp_path / "nolayout.npz", a=np.zeros((3, 17, 3)))
    with pytest.raises(DataError, match="nolayout.npz: missing field 'layout'"):
        generic.read_file(str(tmp_path / "nolayout.npz"))
    data = (tmp_path / "shape.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:100])
    with pytest.raises(DataError, match="cut.npz: not a readable .npz"):
        generic.read_file(str(tmp_path / "cut.npz"))
    (tmp_path / "cut.json").write_text('{"layout": "coco17", "videos": {"a": [[[1, 2')
    with pytest.raises(DataError, match="cut.json: not a readable JSON"):
        generic.read_file(str(tmp_path / "cut.json"))
    (tmp_path / "fields.json").write_text('{"layout": "coco17", "clips": {}}')
    with pytest.raises(DataError, match="fields.json: expected an object with fields 'layout'"):
        generic.read_file(str(tmp_path / "fields.json"))
    (tmp_path / "ragged.json").write_text('{"layout": "coco17", "videos": {"a": [[[1, 2, 1]], [[1, 2]]]}}')
    with pytest.raises(DataError, match="ragged.json: video 'a'"):
        generic.read_file(str(tmp_path / "ragged.json"))


def test_brace_official_split_from_the_real_metadata(tmp_path):
    from conftest import BRACE
    ann = BRACE / "annotations"
    if not (ann / "sequences.csv").is_file():
        pytest.skip(f"BRACE metadata not found at {ann}")
    with open(ann / "sequences.csv", newline="") as f:
        seqs = list(csv.DictReader(f))
    flag = {}
    for split in ("train", "test"):
        with open(ann / f"sequences_{split}.csv", newline="") as f:
            flag.update({r["uid"]: split for r in csv.DictReader(f)})
    rng = np.random.default_rng(3)
    want = {}
    for r in seqs[:3]:                                           # one short segment inside each real sequence
        vid, a = r["video_id"], int(r["start_frame"])
        write_segment(tmp_path / "b" / "dataset" / r["year"] / vid / f"{vid}_{a}-{a + 5}_toprock.json", vid,
                      {f: coco_frame(rng) for f in range(a, a + 6)})
        want[f"{vid}/{a:06d}-{a + 5:06d}"] = flag[r["uid"]]
    got = {v.name: v.official_split for v in brace.read_folder(str(tmp_path / "b"), annotations=str(ann))}
    assert got == want and set(want.values()) <= {"train", "test"}
    assert {v.official_split for v in brace.read_folder(str(tmp_path / "b"))} == {None}   # no annotations: none
    with pytest.raises(DataError, match="no sequences.csv"):
        brace.read_folder(str(tmp_path / "b"), annotations=str(tmp_path))


def test_open_data_reads_a_brace_folder_directly(brace_dir):
    from posedenoise.data import open_data
    root, _, _ = brace_dir
    ds = open_data(str(root), step=1)
    assert set(ds.cache.sources) == {"brace"} and ds.cache.num_videos == 3 and ds.cache.num_frames == 8 + 3 + 6
    assert ds.num_windows == (8 - 4) + 0 + (6 - 4)          # 5-frame windows; the 3-frame run has none
