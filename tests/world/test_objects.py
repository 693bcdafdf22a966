"""The procedural tabletop objects: they compile, rest stably, differ within a kind, and their grasp
sites sit on the surface with outward normals."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from deft_core.tasks import TASKS
from deft_core.world.objects import (KINDS, get_variant, object_extent, object_mjcf, object_variants,
                                     standalone_xml)

ALL = object_variants()


def _warnings(d) -> int:
    return int(sum(d.warning[i].number for i in range(len(d.warning))))


def _compile(variant):
    m = mujoco.MjModel.from_xml_string(standalone_xml(variant))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    return m, d


@pytest.mark.parametrize("variant", ALL, ids=[v.name for v in ALL])
def test_object_compiles_and_rests_stably(variant):
    m, d = _compile(variant)
    b = m.body("obj/root").id
    p0, q0 = d.xpos[b].copy(), d.xquat[b].copy()
    mujoco.mj_step(m, d, 200)
    assert _warnings(d) == 0
    assert np.linalg.norm(d.xpos[b] - p0) < 2e-3, "object drifted more than 2 mm at rest"
    angle = 2 * np.degrees(np.arccos(min(1.0, abs(float(q0 @ d.xquat[b])))))
    assert angle < 1.0, f"object rotated {angle:.2f} deg at rest"
    assert np.abs(d.qvel).max() < 0.05
    assert m.body_subtreemass[b] == pytest.approx(variant.mass + (3.0 if variant.kind == "drawer" else 0.0), rel=1e-4)


@pytest.mark.parametrize("variant", ALL, ids=[v.name for v in ALL])
def test_grasp_sites_lie_on_the_surface_with_outward_normals(variant):
    m, d = _compile(variant)
    obj = object_mjcf(variant, "obj/")
    assert {"body", "center"} <= set(obj.sites)
    body_ids = {m.body(b).id for b in obj.bodies}
    for region, name in obj.sites.items():
        s = m.site(name).id
        R = d.site_xmat[s].reshape(3, 3)
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-9)
        if region in ("center", "cabinet", "dish"):
            continue
        z = R[:, 2]
        start = d.site_xpos[s] + 0.03 * z
        geomid = np.zeros(1, dtype=np.int32)
        dist = mujoco.mj_ray(m, d, start, -z, None, 1, -1, geomid)
        assert dist > 0 and m.geom_bodyid[geomid[0]] in body_ids, f"{region}: ray along -z misses the object"
        assert abs(dist - 0.03) < 4e-3, f"{region}: site is {1000 * (dist - 0.03):.1f} mm off the surface"


def test_task_grasp_regions_exist_on_every_variant_of_the_grasped_kind():
    for task in TASKS.values():
        for v in object_variants(task.object_kind):
            assert task.grasp_region in object_mjcf(v, "o/").sites, (task.name, v.name)


def test_every_kind_has_train_and_test_variants_that_differ():
    for kind in KINDS:
        train, test = object_variants(kind, "train"), object_variants(kind, "test")
        assert train and test, kind
        vs = train + test
        for i, a in enumerate(vs):
            for b in vs[i + 1:]:
                assert a.rgba != b.rgba, (a.name, b.name)
                assert not np.allclose(object_extent(a).half_sizes, object_extent(b).half_sizes, atol=2e-3), (a.name, b.name)


@pytest.mark.parametrize("variant", ALL, ids=[v.name for v in ALL])
def test_extent_matches_the_compiled_geometry(variant):
    m, d = _compile(variant)
    lo, hi = [], []
    for g in range(m.ngeom):
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE or m.geom_contype[g] == 0:
            continue
        R = d.geom_xmat[g].reshape(3, 3)
        c = d.geom_xpos[g] + R @ m.geom_aabb[g, :3]
        r = np.abs(R) @ m.geom_aabb[g, 3:]
        lo.append(c - r)
        hi.append(c + r)
    ext = object_extent(variant)
    # MuJoCo's boxes are conservative (oriented boxes re-boxed), ours are exact for primitives
    assert np.all(ext.lo >= np.min(lo, 0) - 1e-6) and np.all(ext.hi <= np.max(hi, 0) + 1e-6)
    assert np.all(ext.hi - ext.lo >= (np.max(hi, 0) - np.min(lo, 0)) * 0.6)
    assert ext.lo[2] >= -1e-6, "object reaches below the table surface"
    assert ext.footprint_radius >= np.linalg.norm(ext.half_sizes[:2]) * 0.99 - np.linalg.norm(ext.center[:2])


def test_drawer_starts_slightly_open_and_slides_when_pulled():
    v = get_variant("drawer_oak")
    m, d = _compile(v)
    obj = object_mjcf(v, "obj/")
    assert obj.free_joint is None
    j = m.joint(obj.joints["drawer"])
    assert d.qpos[j.qposadr[0]] == pytest.approx(0.03)
    drawer = m.body("obj/drawer").id
    d.xfrc_applied[drawer, :3] = [-20.0, 0.0, 0.0]  # pull towards -x (out of the cabinet front)
    mujoco.mj_step(m, d, 300)
    assert d.qpos[j.qposadr[0]] > 0.08
    assert _warnings(d) == 0


def test_two_instances_and_yaw_compose_in_one_model():
    a = object_mjcf("mug_red", "a/", pos=(0.1, 0.0, 0.0), yaw=0.0)
    b = object_mjcf("mug_red", "b/", pos=(-0.1, 0.0, 0.0), yaw=np.pi / 2)
    xml = (f"<mujoco><asset>{a.assets}{b.assets}</asset><worldbody>"
           f'<geom type="plane" size="1 1 0.1"/>{a.body}{b.body}</worldbody></mujoco>')
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    handle_dir = d.site_xpos[m.site("b/handle").id] - d.xpos[m.body("b/root").id]
    assert handle_dir[1] > 0.05 and abs(handle_dir[0]) < 1e-6  # yaw +90°: the handle points along +y


def test_bad_input_is_named():
    with pytest.raises(KeyError, match="unknown object kind 'plate'"):
        object_variants("plate")
    with pytest.raises(ValueError, match="split"):
        object_variants(split="val")
    with pytest.raises(KeyError, match="unknown object variant 'mug_gold'"):
        get_variant("mug_gold")
    with pytest.raises(ValueError, match="prefix"):
        object_mjcf(get_variant("mug_red"), "")
    with pytest.raises(ValueError, match="position"):
        object_mjcf(get_variant("mug_red"), "c/", pos=(0, np.nan, 0))
