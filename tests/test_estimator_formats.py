"""posedenoise.data.estimators: files written as mmpose/Detectron2 (COCO results), COCO/PoseTrack ground truth,
OpenPose --write_json and plain arrays write them; expectations built here from the data written, not by the
code under test."""
import json
import math

import numpy as np
import pytest

from posedenoise.data.estimators import MAX_JUMP, Track, read_array, read_coco, read_openpose, read_track
from posedenoise.errors import DataError

# A person's keypoint offsets from its centre: x in [-20, 20], y in [-100, 100] (box diagonal ~204 px).
_OFF17 = np.stack([np.linspace(-20, 20, 17), np.linspace(-100, 100, 17)], 1)
_OFF25 = np.stack([np.linspace(20, -20, 25), np.linspace(-100, 100, 25)], 1)


def pose(cx, cy, conf, k=17, zero=()):
    """(k, 3) keypoints around (cx, cy), every confidence `conf`; keypoints in `zero` written (0, 0, 0) as
    OpenPose writes an undetected one."""
    off = _OFF17 if k == 17 else _OFF25
    a = np.concatenate([off + [cx, cy], np.full((k, 1), conf)], 1)
    a[list(zero)] = 0
    return a


def flat(a):
    return [round(float(v), 3) for v in np.asarray(a).reshape(-1)]


def det(image_id, kp, score=None, track=None):
    d = {"image_id": image_id, "category_id": 1, "keypoints": flat(kp)}
    if score is not None:
        d["score"] = score
    if track is not None:
        d["track_id"] = track
    return d


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def rounded(a):
    return np.asarray(flat(a)).reshape(np.shape(a))


# --- COCO results without track ids: by score and continuity ---------------------------------------------

def people_p_q():
    """P walks right 5 px a frame near x = 100; Q stands at x = 400 (far: > MAX_JUMP diagonals away)."""
    P = {t: pose(100 + 5 * t, 200, 0.8) for t in range(5)}
    P[4] = pose(120, 200, 0.8, zero=(0, 1, 2, 3, 4))           # the head not detected
    Q = {t: pose(400, 210, 0.7) for t in range(5)}
    return P, Q


def test_coco_results_by_score_and_continuity(tmp_path):
    P, Q = people_p_q()
    dets = [det(10, Q[0], 0.8), det(10, P[0], 0.9),
            det(11, P[1], 0.95), det(11, Q[1], 0.7),             # the best detection: frame 1
            det(12, Q[2], 0.8),                                  # P missed: Q is no match
            det(13, Q[3], 0.6), det(13, P[3], 0.85),
            det(14, P[4], 0.9)]
    path = write(tmp_path / "results.keypoints.json", dets)
    track = read_coco(str(path))
    assert isinstance(track, Track)
    assert track.layout == "coco17" and track.frame_size is None and track.gt is None
    assert track.frames == [10, 11, 12, 13, 14]
    expected = np.stack([rounded(P[0]), rounded(P[1]), np.zeros((17, 3)), rounded(P[3]), rounded(P[4])])
    assert track.keypoints.dtype == np.float64 and track.keypoints.shape == (5, 17, 3)
    np.testing.assert_allclose(track.keypoints, expected)
    assert track.chosen == ("by score and continuity: started at frame 1 (score 0.95); 1 frames with no matching "
                            "detection left missing; 0 frames with no detection; 4 frames had other people")


def test_the_walk_keeps_its_reference_across_a_miss(tmp_path):
    """After a missed frame the next frame is compared with the last person taken, not with the miss."""
    diagonal = math.hypot(40, 200)
    A = [pose(100, 200, 0.9), pose(110, 200, 0.5), None, pose(60, 200, 0.5)]
    far = pose(110 + 0.55 * diagonal, 200, 0.99)                  # 0.55 diagonals right of A[1]: a miss
    # A[3] is 0.25 diagonals left of A[1] but 0.8 from `far`: taken only if the miss left the reference alone
    assert abs(60 - 110) / diagonal < MAX_JUMP < (110 + 0.55 * diagonal - 60) / diagonal
    dets = [det(0, A[0], 0.99), det(1, A[1], 0.5), det(2, far, 0.4), det(3, A[3], 0.5)]
    track = read_coco(str(write(tmp_path / "r.json", dets)))
    np.testing.assert_allclose(track.keypoints[[0, 1, 3]], np.stack([rounded(a) for a in (A[0], A[1], A[3])]))
    assert (track.keypoints[2] == 0).all()
    assert MAX_JUMP == 0.5
    assert "1 frames with no matching detection left missing" in track.chosen


def test_a_lone_keypoint_does_not_shrink_the_walks_reference(tmp_path):
    """A frame where one keypoint is present has a box of no size; the walk must keep measuring the next
    frames against the last real box, or every later frame of the same person (4 px away) is a jump."""
    lone = pose(108, 200, 0.9, zero=[i for i in range(17) if i != 8])   # one keypoint, the middle one
    P = [pose(100 + 4 * t, 200, 0.9) for t in range(6)]
    dets = [det(0, P[0], 0.99), det(1, P[1], 0.9), det(2, lone, 0.9), det(3, P[3], 0.9), det(4, P[4], 0.9),
            det(5, P[5], 0.9)]
    track = read_coco(str(write(tmp_path / "r.json", dets)))
    assert (track.keypoints[:, :, 2] > 0).sum(1).tolist() == [17, 17, 1, 17, 17, 17]
    assert "0 frames with no matching detection" in track.chosen


def test_coco_results_score_missing_is_the_mean_confidence(tmp_path):
    lo, hi = pose(100, 200, 0.3), pose(400, 200, 0.6)
    track = read_coco(str(write(tmp_path / "r.json", [det(5, lo), det(5, hi)])))
    np.testing.assert_allclose(track.keypoints[0], rounded(hi))
    assert "started at frame 0 (score 0.60)" in track.chosen


# --- COCO results with track ids ---------------------------------------------------------------------------

def test_coco_results_with_track_ids_take_the_largest_score_sum(tmp_path):
    P, Q = people_p_q()
    dets = [det(t, P[t], 0.5, track=1) for t in range(5)]          # sum 2.5
    dets += [det(t, Q[t], 0.9, track=2) for t in (1, 3)]            # sum 1.8, though the best single score
    track = read_coco(str(write(tmp_path / "tracked.json", dets)))
    np.testing.assert_allclose(track.keypoints, np.stack([rounded(P[t]) for t in range(5)]))
    assert track.chosen == "track id 1 (of 2 tracks; 5 of 5 frames)"


def test_one_person_tracked_and_one_not(tmp_path):
    """A file where one person carries a track id and the other none: the tracked one is taken, even where
    the untracked one scores higher and the tracked one is absent (a frame of confidence 0)."""
    P, Q = people_p_q()
    dets = [det(t, P[t], 0.5, track=7) for t in (0, 1, 3)] + [det(t, Q[t], 0.99) for t in range(4)]
    track = read_coco(str(write(tmp_path / "mixed.json", dets)))
    assert track.frames == [0, 1, 2, 3]
    expected = np.stack([rounded(P[0]), rounded(P[1]), np.zeros((17, 3)), rounded(P[3])])
    np.testing.assert_allclose(track.keypoints, expected)
    assert track.chosen == "track id 7 (of 1 tracks; 3 of 4 frames); 4 detections without a track id not considered"


# --- COCO ground truth: two videos, PoseTrack-style ---------------------------------------------------------

def gt_doc():
    P = {t: pose(100 + 5 * t, 200, 0.0) for t in range(3)}
    Q = {t: pose(400, 210, 0.0) for t in range(3)}
    for t in range(3):
        P[t][:, 2], Q[t][:, 2] = 2, 2
        P[t][[3, 4], 2] = 1                   # labelled, occluded
        P[t][[1, 2], :] = 0                   # not labelled
    images = [{"id": 103, "width": 640, "height": 480, "file_name": "v7/002.jpg", "frame_id": 2, "video_id": 7},
              {"id": 101, "width": 640, "height": 480, "file_name": "v7/000.jpg", "frame_id": 0, "video_id": 7},
              {"id": 102, "width": 640, "height": 480, "file_name": "v7/001.jpg", "frame_id": 1, "video_id": 7},
              {"id": 201, "width": 640, "height": 480, "file_name": "v8/000.jpg", "frame_id": 0, "video_id": 8},
              {"id": 202, "width": 1280, "height": 720, "file_name": "v8/001.jpg", "frame_id": 1, "video_id": 8}]
    anns = []
    for t, image in enumerate((101, 102, 103)):
        anns.append({"id": 10 * t + 1, "image_id": image, "category_id": 1, "keypoints": flat(Q[t]),
                     "num_keypoints": 17, "track_id": 2, "bbox": [380, 110, 40, 200]})
        anns.append({"id": 10 * t + 2, "image_id": image, "category_id": 1, "keypoints": flat(P[t]),
                     "num_keypoints": 15, "track_id": 1, "bbox": [80, 100, 40, 200]})
    anns.append({"id": 99, "image_id": 201, "category_id": 1, "keypoints": flat(P[0]), "num_keypoints": 15})
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": [],
                           "skeleton": []}]}
    return doc, P, Q


def test_coco_with_gt_of_two_videos(tmp_path):
    doc, Pg, Qg = gt_doc()
    gt = write(tmp_path / "person_keypoints_val.json", doc)
    Pd = {t: pose(102 + 5 * t, 201, 0.9) for t in range(2)}         # the estimator, near the GT
    Qd = {t: pose(398, 211, 0.8) for t in range(2)}
    dets = [det(101, Pd[0], 0.9), det(101, Qd[0], 0.8), det(102, Qd[1], 0.8), det(102, Pd[1], 0.9),
            det(201, Pd[0], 0.99)]                                # on the other video: not read
    res = write(tmp_path / "results.json", dets)
    track = read_coco(str(res), gt=str(gt), video=7)
    assert track.frames == [101, 102, 103]                        # by frame_id, not the file's order
    assert track.frame_size == (640, 480)
    np.testing.assert_allclose(track.keypoints, np.stack([rounded(Pd[0]), rounded(Pd[1]), np.zeros((17, 3))]))
    # 101, 102: the nearest GT person; 103 (no detection: no basis) the GT track matched most, track 1 (P).
    np.testing.assert_allclose(track.gt, np.stack([rounded(Pg[t]) for t in range(3)]))
    assert track.chosen.startswith("by score and continuity: started at frame 0 (score 0.90); 0 frames with no "
                                   "matching detection left missing; 1 frames with no detection; 2 frames had "
                                   "other people; gt: in 3 frames with several GT people, the one nearest the track")
    assert track.chosen.endswith("; 1 frames without a basis took GT track 1 (the one matched most)")
    # the video as a string works too (PoseTrack's vid_id is a string)
    assert read_coco(str(res), gt=str(gt), video="7").frames == [101, 102, 103]


def test_coco_gt_without_track_ids_leaves_an_undecided_frame_without_truth(tmp_path):
    doc, Pg, _ = gt_doc()
    for a in doc["annotations"]:
        a.pop("track_id", None)
    gt = write(tmp_path / "gt.json", doc)
    res = write(tmp_path / "r.json", [det(101, pose(100, 200, 0.9), 0.9)])
    track = read_coco(str(res), gt=str(gt), video=7)
    np.testing.assert_allclose(track.gt[0], rounded(Pg[0]))
    assert (track.gt[1:] == 0).all()
    assert track.chosen.endswith("; 2 frames without a basis left without ground truth")


def test_coco_gt_of_several_videos_needs_one(tmp_path):
    doc, _, _ = gt_doc()
    gt = write(tmp_path / "gt.json", doc)
    res = write(tmp_path / "r.json", [det(101, pose(100, 200, 0.9), 0.9)])
    with pytest.raises(DataError) as e:
        read_coco(str(res), gt=str(gt))
    assert "gt.json" in str(e.value) and "'video_id'" in str(e.value) and "7, 8" in str(e.value)
    with pytest.raises(DataError) as e:
        read_coco(str(res), gt=str(gt), video=9)
    assert "gt.json" in str(e.value) and "video 9" in str(e.value) and "7, 8" in str(e.value)
    with pytest.raises(DataError) as e:                    # video 8's images differ in size
        read_coco(str(write(tmp_path / "r8.json", [det(201, pose(100, 200, 0.9), 0.9)])), gt=str(gt), video=8)
    assert "gt.json" in str(e.value) and "'width'" in str(e.value) and "differ" in str(e.value)


# --- OpenPose -----------------------------------------------------------------------------------------------

def openpose_person(kp, person_id=-1):
    return {"person_id": [person_id], "pose_keypoints_2d": flat(kp), "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
            "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}


def openpose_folder(folder, frames, video="clip"):
    folder.mkdir(exist_ok=True)
    names = []
    for t, people in enumerate(frames):
        name = f"{video}_{t:012d}_keypoints.json"
        write(folder / name, {"version": 1.3, "people": people})
        names.append(name)
    return names


def test_openpose_two_people_crossing_and_a_frame_with_none(tmp_path):
    """A walks right along y = 200, B left along y = 260 (further back); they cross between frames 2 and 3.
    The walk stays with A, the nearer one each frame, whatever the order OpenPose lists them in."""
    A = [pose(100 + 40 * t, 200, 0.9 if t != 1 else 0.95, k=25) for t in range(5)]
    A[4] = pose(260, 200, 0.9, k=25, zero=(19, 20))               # toes not found
    B = [pose(300 - 40 * t, 260, 0.7, k=25) for t in range(5)]
    frames = [[openpose_person(A[t]), openpose_person(B[t])] if t % 2 == 0 else
              [openpose_person(B[t]), openpose_person(A[t])] for t in range(5)] + [[]]
    names = openpose_folder(tmp_path / "op", frames)
    track = read_openpose(str(tmp_path / "op"))
    assert track.layout == "openpose25" and track.frame_size is None and track.gt is None
    assert track.frames == names and names[0] == "clip_000000000000_keypoints.json"
    expected = np.concatenate([np.stack([rounded(a) for a in A]), np.zeros((1, 25, 3))])
    np.testing.assert_allclose(track.keypoints, expected)
    assert track.keypoints[4, 19, 2] == 0 and track.keypoints[4, 19, 0] == 0
    assert track.chosen == ("by score and continuity: started at frame 1 (score 0.95); 0 frames with no matching "
                            "detection left missing; 1 frames with no detection; 5 frames had other people")


def test_openpose_person_ids_are_tracks(tmp_path):
    A = [pose(100, 200, 0.4, k=25) for _ in range(3)]
    B = [pose(300, 200, 0.9, k=25) for _ in range(3)]
    frames = [[openpose_person(A[t], 3), openpose_person(B[t], 5)] for t in range(2)] + [[openpose_person(A[2], 3)]]
    openpose_folder(tmp_path / "op", frames)
    track = read_openpose(str(tmp_path / "op"))
    np.testing.assert_allclose(track.keypoints[:2], np.stack([rounded(b) for b in B[:2]]))
    assert (track.keypoints[2] == 0).all()
    assert track.chosen == "track id 5 (of 2 tracks; 2 of 3 frames)"


def test_openpose_folder_of_two_videos(tmp_path):
    openpose_folder(tmp_path / "op", [[openpose_person(pose(100, 200, 0.9, k=25))]], video="a")
    openpose_folder(tmp_path / "op", [[openpose_person(pose(50, 200, 0.9, k=25))]] * 2, video="b")
    with pytest.raises(DataError) as e:
        read_openpose(str(tmp_path / "op"))
    assert "op" in str(e.value) and "a, b" in str(e.value)
    assert read_openpose(str(tmp_path / "op"), video="b").frames == [f"b_{t:012d}_keypoints.json" for t in (0, 1)]


# --- arrays -------------------------------------------------------------------------------------------------

def test_arrays(tmp_path):
    a = np.stack([pose(100 + t, 200, 0.5) for t in range(4)])
    np.save(tmp_path / "coco.npy", a)
    track = read_array(str(tmp_path / "coco.npy"))
    assert track.layout == "coco17" and track.frames == [0, 1, 2, 3] and track.frame_size is None
    np.testing.assert_array_equal(track.keypoints, a)

    xy = np.arange(3 * 25 * 2, dtype=np.float32).reshape(3, 25, 2)
    np.savez(tmp_path / "mine.npz", pred=xy, frame_size=np.array([1920, 1080]))
    track = read_track(str(tmp_path / "mine.npz"), layout="pose25", key="pred")
    assert track.layout == "pose25" and track.frame_size == (1920, 1080)
    np.testing.assert_array_equal(track.keypoints[..., :2], xy)
    np.testing.assert_array_equal(track.keypoints[..., 2], np.ones((3, 25)))

    np.savez(tmp_path / "penn.npz", keypoints=np.zeros((2, 13, 3)), layout=np.array("penn13"))
    assert read_track(str(tmp_path / "penn.npz")).layout == "penn13"


# --- the dispatcher -----------------------------------------------------------------------------------------

def test_read_track_dispatches(tmp_path):
    openpose_folder(tmp_path / "op", [[openpose_person(pose(100, 200, 0.9, k=25))]])
    assert read_track(tmp_path / "op").layout == "openpose25"
    doc, _, _ = gt_doc()
    gt = write(tmp_path / "gt.json", doc)
    res = write(tmp_path / "r.json", [det(101, pose(100, 200, 0.9), 0.9)])
    track = read_track(str(res), gt=str(gt), video=7)
    assert track.layout == "coco17" and track.gt is not None and track.frame_size == (640, 480)
    np.save(tmp_path / "x.npy", np.zeros((2, 17, 3)))
    assert read_track(str(tmp_path / "x.npy")).layout == "coco17"
    with pytest.raises(DataError, match="x.txt"):
        (tmp_path / "x.txt").write_text("")
        read_track(str(tmp_path / "x.txt"))
    with pytest.raises(DataError, match="gt does not apply"):
        read_track(str(tmp_path / "x.npy"), gt=str(gt))


# --- bad input: one line naming the file and the field ------------------------------------------------------

def _bad_results(tmp_path, name, content, raw=False):
    p = tmp_path / name
    p.write_text(content if raw else json.dumps(content))
    with pytest.raises(DataError) as e:
        read_coco(str(p))
    return str(e.value)


GOOD = flat(pose(100, 200, 0.9))


@pytest.mark.parametrize("name, content, words", [
    ("missing_kp.json", [{"image_id": 1, "category_id": 1, "score": 0.9}], ["detection 0", "'keypoints'", "missing"]),
    ("not_mult3.json", [{"image_id": 1, "keypoints": GOOD[:50], "score": 0.9}], ["'keypoints'", "51", "got 50"]),
    ("eighteen.json", [{"image_id": 1, "keypoints": GOOD + [1, 2, 3], "score": 0.9}], ["'keypoints'", "51", "got 54"]),
    ("text_value.json", [{"image_id": 1, "keypoints": ["a"] + GOOD[1:], "score": 0.9}],
     ["'keypoints'", "numbers", "'a'"]),
    ("null_value.json", [{"image_id": 1, "keypoints": [None] + GOOD[1:], "score": 0.9}], ["'keypoints'", "numbers"]),
    ("bad_score.json", [{"image_id": 1, "keypoints": GOOD, "score": "high"}], ["'score'", "number"]),
    ("negative.json", [{"image_id": 1, "keypoints": GOOD[:2] + [-1.5] + GOOD[3:], "score": 0.9}],
     ["'keypoints'", ">= 0"]),
    ("bad_image.json", [{"image_id": [1], "keypoints": GOOD}], ["'image_id'", "integer"]),
    ("empty.json", [], ["no detections"]),
    ("an_object.json", {"annotations": []}, ["expected a JSON list", "dict"]),
    ("not_dets.json", [[1, 2, 3]], ["detection 0", "expected an object"]),
    ("bad_track.json", [{"image_id": 1, "keypoints": GOOD, "track_id": {"a": 1}}], ["'track_id'", "integer"]),
])
def test_bad_results_files(tmp_path, name, content, words):
    msg = _bad_results(tmp_path, name, content)
    assert name in msg and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_nan_and_broken_json(tmp_path):
    nan = _bad_results(tmp_path, "nan.json", '[{"image_id": 1, "keypoints": [NaN' + ", 1" * 50 + "]}]", raw=True)
    assert "nan.json" in nan and "'keypoints'" in nan and "NaN" in nan
    broken = _bad_results(tmp_path, "broken.json", '[{"image_id": 1, "keypoi', raw=True)
    assert "broken.json" in broken and "not a readable JSON" in broken
    zero = _bad_results(tmp_path, "all_zero.json", [{"image_id": 1, "keypoints": [0] * 51, "score": 0.5}])
    assert "all_zero.json" in zero and "confidence > 0" in zero


def test_bad_gt_files(tmp_path):
    res = write(tmp_path / "r.json", [det(101, pose(100, 200, 0.9), 0.9)])
    doc, _, _ = gt_doc()
    cases = []
    d = json.loads(json.dumps(doc)); d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:48]
    cases.append(("gt_short.json", d, ["annotations[0]", "'keypoints'", "got 48"]))
    d = json.loads(json.dumps(doc)); d["annotations"][0]["keypoints"][2] = 3
    cases.append(("gt_vis.json", d, ["annotations[0]", "'keypoints'", "visibility 0, 1 or 2"]))
    d = json.loads(json.dumps(doc)); del d["images"]
    cases.append(("gt_noimages.json", d, ["'images'", "missing"]))
    cases.append(("gt_list.json", [doc], ["expected a COCO ground-truth object"]))
    d = json.loads(json.dumps(doc)); del d["annotations"][1]["keypoints"]
    cases.append(("gt_nokp.json", d, ["annotations[1]", "'keypoints'", "missing"]))
    for name, content, words in cases:
        gt = write(tmp_path / name, content)
        with pytest.raises(DataError) as e:
            read_coco(str(res), gt=str(gt), video=7)
        for w in [name] + words:
            assert w in str(e.value), (w, str(e.value))
    gt = write(tmp_path / "gt.json", doc)
    stray = write(tmp_path / "stray.json", [det(555, pose(100, 200, 0.9), 0.9)])
    with pytest.raises(DataError) as e:
        read_coco(str(stray), gt=str(gt), video=7)
    assert "stray.json" in str(e.value) and "'image_id'" in str(e.value) and "555" in str(e.value)
    with pytest.raises(DataError) as e:
        read_coco(str(res), video=7)
    assert "r.json" in str(e.value) and "GT" in str(e.value)


def test_bad_openpose_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        read_openpose(str(tmp_path / "empty"))
    assert "empty" in str(e.value) and "_keypoints.json" in str(e.value)

    cases = [("coco18", [{"person_id": [-1], "pose_keypoints_2d": [1.0] * 54}], ["'pose_keypoints_2d'", "BODY_25"]),
             ("short", [{"person_id": [-1], "pose_keypoints_2d": [1.0] * 74}], ["'pose_keypoints_2d'", "75", "got 74"]),
             ("nokp", [{"person_id": [-1], "face_keypoints_2d": []}], ["people[0]", "'pose_keypoints_2d'", "missing"])]
    for folder, people, words in cases:
        names = openpose_folder(tmp_path / folder, [people])
        with pytest.raises(DataError) as e:
            read_openpose(str(tmp_path / folder))
        for w in [names[0]] + words:
            assert w in str(e.value), (w, str(e.value))
    (tmp_path / "nopeople").mkdir()
    write(tmp_path / "nopeople" / "v_000000000000_keypoints.json", {"version": 1.3, "bodies": []})
    with pytest.raises(DataError, match=r"v_000000000000_keypoints.json: missing field 'people'"):
        read_openpose(str(tmp_path / "nopeople"))
    (tmp_path / "nobody").mkdir()
    write(tmp_path / "nobody" / "v_000000000000_keypoints.json", {"version": 1.3, "people": []})
    with pytest.raises(DataError, match="nobody: no detections"):
        read_openpose(str(tmp_path / "nobody"))


def test_bad_arrays(tmp_path):
    np.save(tmp_path / "k25.npy", np.zeros((2, 25, 3)))
    with pytest.raises(DataError) as e:
        read_array(str(tmp_path / "k25.npy"))
    assert "k25.npy" in str(e.value) and "pose25 or openpose25" in str(e.value)
    a = np.zeros((2, 17, 3)); a[1, 3, 0] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(DataError, match=r"nan.npy: the array: contains NaN"):
        read_array(str(tmp_path / "nan.npy"))
    np.savez(tmp_path / "nokey.npz", poses=np.zeros((2, 17, 3)))
    with pytest.raises(DataError, match=r"nokey.npz: missing field 'keypoints'.*poses"):
        read_array(str(tmp_path / "nokey.npz"))
    np.savez(tmp_path / "size.npz", keypoints=np.zeros((2, 17, 3)), frame_size=np.array([640]))
    with pytest.raises(DataError, match=r"size.npz: field 'frame_size'"):
        read_array(str(tmp_path / "size.npz"))
    np.save(tmp_path / "flat.npy", np.zeros((2, 51)))
    with pytest.raises(DataError, match=r"flat.npy: the array: expected a numeric array \(T, K, 2 or 3\)"):
        read_array(str(tmp_path / "flat.npy"))
    np.save(tmp_path / "wrongk.npy", np.zeros((2, 17, 3)))
    with pytest.raises(DataError, match=r"wrongk.npy: the array: layout openpose25 has 25 keypoints, got K = 17"):
        read_array(str(tmp_path / "wrongk.npy"), layout="openpose25")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="junk.npy: not a readable"):
        read_array(str(tmp_path / "junk.npy"))


# --- mmpose's saved predictions ------------------------------------------------------------------------------

def mmpose_instance(kp, score, k=17):
    """One instance as mmpose's split_instances writes it: keypoints [[x, y], ...], keypoint_scores, bbox."""
    full = np.zeros((k, 3))
    full[:17] = kp
    return {"keypoints": [[round(float(x), 3), round(float(y), 3)] for x, y in full[:, :2]],
            "keypoint_scores": [round(float(c), 3) for c in full[:, 2]],
            "bbox": [[0.0, 0.0, 10.0, 10.0]], "bbox_score": [score]}


@pytest.mark.parametrize("k", [17, 133])
def test_mmpose_saved_predictions(tmp_path, k):
    """Frames in frame_id order (written out of order), the person by score and continuity, a whole-body
    model's first 17 keypoints (COCO's body), a frame without anyone left missing."""
    P, Q = people_p_q()
    info = [{"frame_id": 2, "instances": [mmpose_instance(Q[2], 0.8, k)]},           # P missed
            {"frame_id": 0, "instances": [mmpose_instance(Q[0], 0.8, k), mmpose_instance(P[0], 0.9, k)]},
            {"frame_id": 1, "instances": [mmpose_instance(P[1], 0.95, k), mmpose_instance(Q[1], 0.7, k)]},
            {"frame_id": 3, "instances": [mmpose_instance(P[3], 0.85, k)]},
            {"frame_id": 4, "instances": []}]
    path = write(tmp_path / "results_video.json", {"meta_info": {"dataset_name": "coco"}, "instance_info": info})
    track = read_track(str(path))
    assert track.layout == "coco17" and track.frames == [0, 1, 2, 3, 4] and track.frame_size is None
    want = np.stack([rounded(P[0]), rounded(P[1]), np.zeros((17, 3)), rounded(P[3]), np.zeros((17, 3))])
    np.testing.assert_allclose(track.keypoints, want)
    assert track.chosen.startswith("by score and continuity: started at frame 1 (score 0.95)")


def test_bad_mmpose_files(tmp_path):
    P, _ = people_p_q()
    for name, doc, words in (
            ("a.json", {"meta_info": {}}, ["'instance_info'"]),
            ("b.json", {"instance_info": [{"frame_id": 0}]}, ["instance_info[0]", "'instances'"]),
            ("c.json", {"instance_info": [{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 18,
                                                                         "keypoint_scores": [1.0] * 18}]}]},
             ["instances[0]", "'keypoints'", "18"]),
            ("d.json", {"instance_info": [{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 17,
                                                                         "keypoint_scores": [1.0] * 16}]}]},
             ["instances[0]", "'keypoint_scores'"])):
        with pytest.raises(DataError) as e:
            read_track(str(write(tmp_path / name, doc)))
        for w in [name] + words:
            assert w in str(e.value), str(e.value)
