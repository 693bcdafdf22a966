"""Every task's workcell compiles, steps without warnings, keeps objects at rest on the table, and the
overhead camera's reported intrinsics/extrinsics match what MuJoCo renders."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from deft_core.geometry import MUJOCO_TO_OPENCV_CAMERA, invert_transform, project_points, transform_points
from deft_core.tasks import TASK_NAMES, get_task
from deft_core.world.robot_scene import DRAWER_X, PLACE_X, PLACE_Y, build_robot_scene


def _load(task, seed=0, **kw):
    xml, info = build_robot_scene(task, seed=seed, **kw)
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    mujoco.mj_forward(m, d)
    return m, d, info


@pytest.mark.parametrize("task", list(TASK_NAMES) + [None])
def test_task_scene_compiles_steps_and_rests(task):
    m, d, info = _load(task, seed=7)
    spec = get_task(task) if task else None
    expected_roles = {"object"} | ({"support"} if spec and spec.support_kind else set()) if spec else set()
    assert set(info.objects) == expected_roles
    start = {r: d.xpos[m.body(o.mjcf.root_body).id].copy() for r, o in info.objects.items()}
    for r, o in info.objects.items():
        lo_x, hi_x = DRAWER_X if o.mjcf.variant.kind == "drawer" else PLACE_X
        assert lo_x <= o.pos[0] <= hi_x and PLACE_Y[0] <= o.pos[1] <= PLACE_Y[1] and o.pos[2] == 0.0
        assert np.allclose(start[r], o.pos, atol=1e-9)
    mujoco.mj_step(m, d, 200)
    assert sum(d.warning[i].number for i in range(len(d.warning))) == 0
    for r, o in info.objects.items():
        assert np.linalg.norm(d.xpos[m.body(o.mjcf.root_body).id] - start[r]) < 2e-3, f"{r} moved at rest"
    arm_q = [d.qpos[m.jnt_qposadr[m.joint(j).id]] for j in info.arm_joints]
    assert np.allclose(arm_q, info.home_q, atol=2e-3)
    assert [m.actuator(a).name for a in info.hand_actuators] == list(info.hand_actuators)


def test_placement_is_seeded_and_variants_follow_the_split():
    _, a = build_robot_scene("stir_spoon", seed=3)
    _, b = build_robot_scene("stir_spoon", seed=3)
    _, c = build_robot_scene("stir_spoon", seed=4)
    assert a.objects["object"].pos == b.objects["object"].pos and a.objects["object"].yaw == b.objects["object"].yaw
    assert a.objects["object"].pos != c.objects["object"].pos
    for seed in range(5):
        _, info = build_robot_scene("pick_cup", seed=seed, split="test")
        assert info.objects["object"].mjcf.variant.split == "test"
    _, info = build_robot_scene("scoop_grape", seed=0)
    assert info.objects["support"].mjcf.variant.shape == "single"
    _, info = build_robot_scene("pour_cup", variant_names={"object": "mug_white_wide"})
    assert info.objects["object"].variant == "mug_white_wide"


def test_bad_scene_requests_are_named():
    with pytest.raises(KeyError, match="unknown task"):
        build_robot_scene("juggle")
    with pytest.raises(ValueError, match="needs a cup"):
        build_robot_scene("pick_cup", variant_names={"object": "lemon_yellow"})
    with pytest.raises(ValueError, match="no support object"):
        build_robot_scene("pick_cup", variant_names={"support": "pot_steel"})


def test_camera_intrinsics_and_extrinsics_match_the_render():
    m, d, info = _load("pick_cup", seed=2)
    cam = m.camera("overhead").id
    R_mj = d.cam_xmat[cam].reshape(3, 3)
    assert np.allclose(info.T_base_cam[:3, :3], R_mj @ MUJOCO_TO_OPENCV_CAMERA, atol=1e-6)
    assert np.allclose(info.T_base_cam[:3, 3], d.cam_xpos[cam], atol=1e-6)
    w, h = info.camera_size
    # project the cup's rim and body sites with (K, T_base_cam) and look them up in a segmentation render
    obj = info.objects["object"].mjcf
    body_ids = {m.body(b).id for b in obj.bodies}
    r = mujoco.Renderer(m, h, w)
    r.enable_segmentation_rendering()
    r.update_scene(d, "overhead")
    seg = r.render()
    r.close()
    for region in ("body", "center"):
        p = d.site_xpos[m.site(obj.sites[region]).id]
        uv = project_points(transform_points(invert_transform(info.T_base_cam), p), info.K)
        u, v = np.round(uv).astype(int)
        assert 0 <= u < w and 0 <= v < h
        win = seg[max(v - 3, 0):v + 4, max(u - 3, 0):u + 4, 0].ravel()  # geom ids near the projected pixel
        assert any(g >= 0 and m.geom_bodyid[g] in body_ids for g in win), region


def test_world_command_writes_a_scene_that_compiles(tmp_path, capsys):
    from robot.cli import main

    out = tmp_path / "scene.xml"
    assert main(["world", "--scene", "flip_bagel", "--seed", "1", "--out", str(out), "--json"]) == 0
    m = mujoco.MjModel.from_xml_string(out.read_text())
    assert m.body("support/root") and m.site("obj/handle")
    assert main(["world", "--scene", "flip_bagel", "--out", str(out)]) == 2  # no silent overwrite
    assert main(["world", "--kind", "lemon", "--json"]) == 0
    assert "lime_green" in capsys.readouterr().out
    assert main(["world", "--kind", "plate"]) == 2


def test_world_variant_table_keeps_every_name_whole_at_80_columns(capsys, monkeypatch):
    """The table as a log or a pipe gets it (80 columns): no name cut short ('grape_single_purp…' was)."""
    from deft_core.world.objects import object_variants
    from robot.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["world"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    words = set(out.split())
    assert {v.name for v in object_variants()} <= words
