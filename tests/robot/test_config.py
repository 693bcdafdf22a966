"""Robot configuration files: the bundled examples load, and every bad field is named in the error."""

import copy
import json

import numpy as np
import pytest
import yaml

from robot.backends.fake import FakeArm, FakeCamera, FakeHand
from robot.base import ConfigError
from robot.config import (check_geometry, example_config_path, geometry_record, load_robot_config, parse_robot_config,
                          update_robot_config)

GOOD = {
    "name": "bench",
    "arm": {"backend": "fake", "home_position": [0.3, 0.0, 0.3]},
    "hand": {"backend": "fake"},
    "camera": {"backend": "fake", "width": 64, "height": 48},
    "safety": {"workspace": {"lower": [0.1, -0.3, 0.0], "upper": [0.6, 0.3, 0.5]}, "table_z": 0.0, "max_step_m": 0.04},
}


def _with(path, value):
    d = copy.deepcopy(GOOD)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


def test_good_config_builds_devices_with_its_safety():
    cfg = parse_robot_config(GOOD, "bench.yaml")
    arm, hand, cam = cfg.make_arm(), cfg.make_hand(), cfg.make_camera()
    assert isinstance(arm, FakeArm) and isinstance(hand, FakeHand) and isinstance(cam, FakeCamera)
    assert arm.safety.max_step_m == 0.04 and arm.safety is cfg.arm_safety
    with cam:
        assert cam.read().rgb.shape == (48, 64, 3)


def test_lab_example_validates_with_real_backend_options():
    cfg = load_robot_config(example_config_path("lab_xarm6"))
    assert cfg.arm.backend == "xarm" and cfg.arm.options.ip == "192.168.1.208"
    assert cfg.hand.options.current_limit_ma == 350 and len(cfg.hand.options.motor_ids) == 16
    assert cfg.camera.T_base_camera.shape == (4, 4)
    assert cfg.arm_safety.floor_z == pytest.approx(0.03)


def test_sim_example_parses():
    cfg = load_robot_config(example_config_path("sim"), validate_backends=False)
    assert (cfg.arm.backend, cfg.hand.backend, cfg.camera.backend) == ("sim", "sim", "sim")
    assert cfg.camera.T_base_camera is None


@pytest.mark.parametrize("path, value, needle", [
    (("arm", "backend"), "ur5", "arm.backend: unknown arm backend 'ur5'"),
    (("hand", "backend"), KeyError, "hand.backend: required"),
    (("arm", "home_position"), [0.3, 0.0], "home_position must be 3"),
    (("arm", "speed"), 3, "unknown field(s) ['speed']"),
    (("camera", "width"), 2, "width/height"),
    (("camera", "backend"), "realsense", "camera.T_base_camera: required"),
    (("safety", "workspace"), {"lower": [0.7, 0, 0], "upper": [0.6, 0.3, 0.5]}, "lower"),
    (("safety", "max_speed"), 1.0, "unknown field(s) ['max_speed']"),
    (("safety", "hand_lower"), [0.0] * 15, "hand joint lower limits must be 16"),
    (("name",), KeyError, "missing required top-level field 'name'"),
    (("executor",), {"speed": 1.0}, "executor: unknown field(s) ['speed']"),
    (("executor",), {"approach_axis": [0, 0, 0]}, "executor: ExecutorConfig.approach_axis must be a non-zero 3-vector"),
    (("executor",), {"contact_offset": [0, 0.01]}, "executor: ExecutorConfig.contact_offset must be 3 finite numbers"),
    (("executor",), [0, 0, 0.01], "executor: expected a mapping of ExecutorConfig fields"),
    (("retarget",), {"offset": [0.0] * 15}, "retarget: RetargetConfig.offset must be 16 finite numbers"),
    (("retarget",), {"gain": 2.0}, "retarget: unknown field(s) ['gain']"),
    (("executor",), {"squeeze_rad": float("nan")}, "executor: ExecutorConfig.squeeze_rad must be a finite number"),
    (("executor",), {"hover_z_m": "abc"}, "executor: ExecutorConfig.hover_z_m must be a finite number"),
    (("executor",), {"close_steps": 2.5}, "executor: ExecutorConfig.close_steps must be a whole number"),
    (("retarget",), {"side_sign": "abc"}, "retarget: RetargetConfig.side_sign must be 1 or -1"),
    (("retarget",), {"clip": "no"}, "retarget: RetargetConfig.clip must be true or false"),
    (("retarget",), {"lower": [float("nan")] * 16}, "retarget: RetargetConfig.lower/upper must be 16 finite limits"),
])
def test_bad_fields_are_named(path, value, needle):
    with pytest.raises(ConfigError) as info:
        parse_robot_config(_with(path, value), "bench.yaml")
    assert needle in str(info.value) and "bench.yaml" in str(info.value)


def test_executor_and_retarget_sections_set_the_lab_geometry_and_are_recorded():
    """The optional sections: given fields override the lab defaults (palm normal = wrist z, μ 1 cm in front
    of the palm), the rest keep them. A run records the resolved settings that differ from the defaults and
    act on its prior (retarget only for the affordance prior), as plain numbers; nothing for a YAML without
    the sections, an empty one or one restating the defaults (so those all match runs made without them)."""
    d = copy.deepcopy(GOOD)
    d["executor"] = {"contact_offset": [0, 0, 0.03], "squeeze_rad": 0.3}
    d["retarget"] = {"offset": [0.0] * 12 + [0.3, 0.0, 0.0, 0.0]}
    cfg = parse_robot_config(d, "bench.yaml")
    ex = cfg.executor_config()
    assert ex.contact_offset == (0.0, 0.0, 0.03) and ex.squeeze_rad == 0.3
    assert ex.approach_axis == (0.0, 0.0, 1.0) and ex.pregrasp_distance_m == 0.08
    assert cfg.retarget.offset[12] == 0.3 and cfg.retarget.scale.tolist() == [1.0] * 16
    geometry = {"executor": {"contact_offset": [0.0, 0.0, 0.03], "squeeze_rad": 0.3},
                "retarget": {"offset": [0.0] * 12 + [0.3, 0.0, 0.0, 0.0]}}
    assert geometry_record(cfg, "affordance") == {"robot_geometry": geometry}
    assert geometry_record(cfg, "real-world-only") == {"robot_geometry": {"executor": geometry["executor"]}}
    assert json.loads(json.dumps(geometry_record(cfg, "affordance"))) == geometry_record(cfg, "affordance")
    plain = parse_robot_config(GOOD, "bench.yaml")
    assert plain.executor is None and plain.retarget is None and geometry_record(plain, "affordance") == {}
    assert plain.executor_config().contact_offset == (0.0, 0.0, 0.01)   # the documented lab default
    same = {**copy.deepcopy(GOOD), "executor": {"contact_offset": [0, 0, "1e-2"], "squeeze_rad": 0.2}, "retarget": {}}
    same = parse_robot_config(same, "bench.yaml")                        # (YAML reads 1e-2 as a string)
    assert same.geometry == {} and same.executor is None and same.retarget is None
    check_geometry(cfg, geometry_record(cfg, "affordance"), "affordance", "runs/pick_cup/affordance")
    check_geometry(plain, {}, "affordance", "runs/pick_cup/affordance")
    check_geometry(cfg, geometry_record(cfg, "real-world-only"), "real-world-only", "r")  # retarget: not its
    with pytest.raises(ConfigError, match=r"executor and retarget section\(s\) differ from those the run "
                                          r"runs/pick_cup/affordance was fine-tuned with"):
        check_geometry(cfg, {}, "affordance", "runs/pick_cup/affordance")
    with pytest.raises(ConfigError, match=r"the executor section\(s\) differ .*run has None"):
        check_geometry(cfg, {"robot_geometry": {"retarget": geometry["retarget"]}}, "affordance", "r")


def test_bad_extrinsics_and_files(tmp_path):
    bad = _with(("camera", "T_base_camera"), np.diag([2.0, 1, 1, 1]).tolist())
    with pytest.raises(ConfigError, match="T_base_camera: is not a rigid transform"):
        parse_robot_config(bad, "x.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_robot_config(tmp_path / "missing.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_robot_config(p)


def test_update_writes_extrinsics_back(tmp_path):
    p = tmp_path / "bench.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.9]
    update_robot_config(p, ("camera", "T_base_camera"), T)
    np.testing.assert_allclose(load_robot_config(p).camera.T_base_camera, T)
    with pytest.raises(ConfigError, match="rigid"):
        update_robot_config(p, ("camera", "T_base_camera"), np.zeros((4, 4)))
    np.testing.assert_allclose(load_robot_config(p).camera.T_base_camera, T)  # file untouched on failure


def test_calibration_updates_keep_the_files_comments_and_layout(tmp_path):
    """calibrate-camera / calibrate-hand write into the lab YAML: only the values change; its safety notes
    ("LEAP Lite overloads above ~350 mA") and every other line stay as the user wrote them."""
    src = example_config_path("lab_xarm6")
    p = tmp_path / "lab.yaml"
    p.write_text(src.read_text())
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.2, 0.9]
    update_robot_config(p, ("camera", "T_base_camera"), T)
    update_robot_config(p, ("hand", "scale"), np.full(16, 1.1))
    update_robot_config(p, ("hand", "offset"), np.linspace(3.0, 3.3, 16))
    cfg = load_robot_config(p)
    np.testing.assert_allclose(cfg.camera.T_base_camera, T)
    np.testing.assert_allclose(cfg.hand.options.scale, 1.1)
    np.testing.assert_allclose(cfg.hand.options.offset, np.linspace(3.0, 3.3, 16))
    old_lines, new_lines = src.read_text().splitlines(), p.read_text().splitlines()
    assert [ln for ln in old_lines if "#" in ln] == [ln for ln in new_lines if "#" in ln]
    changed = [ln for ln in new_lines if ln not in old_lines]
    assert len(changed) == 5 and all(ln.lstrip().startswith(("scale:", "offset:", "- [")) for ln in changed)
    assert "    - [0.0, 0.0, 0.0, 1.0]" in new_lines            # the matrix keeps one row per line


def test_interfaces_and_config_import_no_sdk_or_heavy_package():
    import subprocess
    import sys

    code = ("import sys, robot.base, robot.config, robot.registry, robot.safety, robot.cli\n"
            "from robot.config import example_config_path, load_robot_config\n"
            "load_robot_config(example_config_path('lab_xarm6'))\n"
            "heavy = ('ray', 'pipelines', 'torch', 'mujoco', 'xarm', 'dynamixel_sdk', 'pyrealsense2', 'cv2')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
