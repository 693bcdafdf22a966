"""Task arrangements: where the support object sits relative to the grasped one at reset.

The scene builder places objects independently; several tasks need a fixed relation so that one
scripted post-grasp trajectory (like the paper's single demonstration) can do the task wherever the
pair lands. Positions in the robot base frame (m); the relations match the default τ of each task
(:mod:`robot.tasks.definitions`):

- ``squeeze_lemon``: the juicer stands ``JUICER_OFFSET`` (+y, to the robot's left) of the lemon;
- ``scoop_grape``: the grape lies ``GRAPE_AHEAD`` m beyond the spoon's bowl along the spoon's axis;
- ``flip_bagel``: the bagel lies just beyond the spatula's blade along its axis;
- ``stir_spoon``: the spoon stands in the pot, bowl on the pot floor ``STIR_BOWL_OFFSET`` beyond the
  pot axis (+x), handle leaning on the rim towards the robot (−x); its free end then sits about
  ``STIR_RADIUS`` m from the pot axis for the training pot (the test jar differs: that is the point).
"""

from __future__ import annotations

import numpy as np

from deft_core.geometry import euler_xyz_to_matrix, matrix_to_quaternion

JUICER_OFFSET = np.array([0.0, 0.15, 0.0])
GRAPE_AHEAD = 0.035
STIR_BOWL_OFFSET = 0.02
#: horizontal distance (m) from the pot axis to the spoon's free end in the stir arrangement
STIR_RADIUS = 0.10


def _free_adr(world, role: str) -> int | None:
    obj = world.info.objects.get(role)
    if obj is None or obj.mjcf.free_joint is None:
        return None
    return int(world.model.jnt_qposadr[world.model.joint(obj.mjcf.free_joint).id])


def set_free_pose(world, role: str, pos, R) -> None:
    """Put ``role``'s free body at ``pos`` (m) with rotation ``R`` (base frame) and zero velocity."""
    adr = _free_adr(world, role)
    if adr is None:
        raise ValueError(f"{role} has no free joint to place")
    world.data.qpos[adr:adr + 3] = pos
    world.data.qpos[adr + 3:adr + 7] = matrix_to_quaternion(np.asarray(R))
    world.mj.mj_forward(world.model, world.data)


def _pose(world, role):
    return world.body_pose(world.info.objects[role].mjcf.root_body)


def _site(world, role, region):
    return world.data.site(world.info.objects[role].mjcf.sites[region]).xpos.copy()


def arrange(world, rng: np.random.Generator) -> None:
    """Apply the arrangement of ``world.task`` (no-op for tasks without one)."""
    task = world.task
    world.mj.mj_forward(world.model, world.data)
    if task == "squeeze_lemon":
        p, _ = _pose(world, "object")
        _, R = _pose(world, "support")
        set_free_pose(world, "support", p * [1, 1, 0] + JUICER_OFFSET, R)
    elif task in ("scoop_grape", "flip_bagel"):
        p, R = _pose(world, "object")
        head = _site(world, "object", "body")
        axis = R[:, 0] * [1, 1, 0]
        axis /= np.linalg.norm(axis)
        extra = GRAPE_AHEAD if task == "scoop_grape" else 0.045 + world.info.objects["support"].mjcf.variant.dim("ring_radius")
        _, Rs = _pose(world, "support")
        zs, _ = _pose(world, "support")
        set_free_pose(world, "support", np.array([head[0], head[1], 0.0]) + axis * extra + [0, 0, zs[2]], Rs)
    elif task == "stir_spoon":
        _stir(world)


def _stir(world) -> None:
    pot = world.info.objects["support"].mjcf.variant
    spoon = world.info.objects["object"].mjcf.variant
    c, _ = _pose(world, "support")
    R_pot, H, wall = pot.dim("radius"), pot.dim("height"), pot.dim("wall")
    # lean so the handle rests on the near (−x) rim with the bowl on the floor beyond the axis
    bowl = np.array([c[0] + STIR_BOWL_OFFSET, c[1], wall + 0.012])
    rim = np.array([c[0] - R_pot + wall, c[1], H + spoon.dim("handle_radius")])
    d = rim - bowl
    pitch = float(np.arctan2(d[2], -d[0]))  # rotation about +y that raises the −x (handle) end
    R = euler_xyz_to_matrix([0.0, pitch, 0.0])
    p0, R0 = _pose(world, "object")
    head_local = R0.T @ (_site(world, "object", "body") - p0)
    set_free_pose(world, "object", bowl - R @ head_local, R)
