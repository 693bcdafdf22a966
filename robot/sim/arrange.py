"""Task arrangements: where the support object sits relative to the grasped one at reset.

The scene builder places objects independently; several tasks need a fixed relation so that one
scripted post-grasp trajectory (like the paper's single demonstration) can do the task wherever the
pair lands. Positions in the robot base frame (m); the relations match the default τ of each task
(:mod:`robot.tasks.definitions`):

- ``squeeze_lemon``: the juicer stands ``JUICER_OFFSET`` (+y, to the robot's left) of the lemon;
- ``scoop_grape``: the grape lies ``GRAPE_AHEAD`` m beyond the spoon's bowl along the spoon's axis;
- ``flip_bagel``: the bagel lies just beyond the spatula's blade along its axis;
- ``stir_spoon``: the spoon stands in the pot like a spoon left in a pan: bowl on the pot floor near
  the wall facing the robot, handle leaning ``STIR_LEAN`` rad above horizontal on that (−x) rim, so a
  few centimetres of handle stand out above the rim for the hand to hold (a 16 × 8.5 cm pot is too deep
  for this hand to reach a handle lying inside it).
"""

from __future__ import annotations

import numpy as np

from deft_core.geometry import euler_xyz_to_matrix, matrix_to_quaternion

JUICER_OFFSET = np.array([0.0, 0.15, 0.0])
GRAPE_AHEAD = 0.035
#: the stirring spoon's handle angle above horizontal (rad)
STIR_LEAN = np.radians(70.0)


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
    # lean STIR_LEAN so the handle's axis passes 1 handle radius (+1 mm) off the near (−x) rim's inner
    # edge, with the bowl on the floor inside; then lift the spoon out of any initial penetration
    hr, b = spoon.dim("handle_radius") + 0.001, STIR_LEAN
    rim = np.array([c[0] - R_pot + wall + hr * np.sin(b), c[1], H + hr * np.cos(b)])
    bowl_z = wall + 0.012
    bowl = np.array([rim[0] + (rim[2] - bowl_z) / np.tan(b), c[1], bowl_z])
    d = rim - bowl
    pitch = float(np.arctan2(d[2], -d[0]))  # rotation about +y that raises the −x (handle) end
    R = euler_xyz_to_matrix([0.0, pitch, 0.0])
    p0, R0 = _pose(world, "object")
    head_local = R0.T @ (_site(world, "object", "body") - p0)
    set_free_pose(world, "object", bowl - R @ head_local, R)
    lift_out_of_penetration(world, "object")


def lift_out_of_penetration(world, role: str, tolerance: float = 5e-4, iters: int = 20) -> float:
    """Raise ``role``'s free body until none of its contacts penetrates more than ``tolerance`` m (an
    object placed by hand must not start inside another: MuJoCo would eject it). Returns the lift (m)."""
    m, d = world.model, world.data
    adr = _free_adr(world, role)
    total = 0.0
    for _ in range(iters):
        world.mj.mj_forward(m, d)
        worst = 0.0
        for i in range(d.ncon):
            c = d.contact[i]
            if world.geom_role[c.geom1] == role or world.geom_role[c.geom2] == role:
                worst = min(worst, float(c.dist))
        if worst >= -tolerance:
            break
        d.qpos[adr + 2] += -worst + 0.001
        total += -worst + 0.001
    world.mj.mj_forward(m, d)
    return total
