"""One simulated workcell shared by the ``sim`` arm, hand and camera backends.

:class:`SimWorld` holds the MuJoCo model and data of a scene built by
:func:`deft_core.world.robot_scene.build_robot_scene` (world frame = robot base frame, table top at
z = 0, metres / radians / seconds of simulated time). It is reset from ``(task, seed, split)``:
the scene is rebuilt (object variants and placement drawn from the seed), the task's arrangement is
applied (:mod:`robot.sim.arrange`), and the objects settle before the episode starts.

The backends find the world by name through :func:`shared_world` (``Config.world``, default
``"default"``), so ``RobotConfig.make_arm()/make_hand()/make_camera()`` give three devices acting on
one simulation. Simulated time only advances in :meth:`SimWorld.advance` (arm moves, hand settling,
the executor's :class:`SimClock`). ``mujoco`` is imported here, never by ``import robot``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from robot.base import require_package

#: segmentation ids in :class:`robot.base.Frame` ``mask`` (per pixel)
SEGMENT_IDS = {"background": 0, "table": 1, "arm": 2, "hand": 3, "object": 4, "support": 5}


def _array_fields(model) -> list[str]:
    return [n for n in dir(model) if not n.startswith("_") and isinstance(getattr(model, n, None), np.ndarray)]


def _same_structure(a, b) -> bool:
    """Whether two compiled models have the same bodies, joints, geoms and assets (names and sizes)."""
    if (a.nbody, a.njnt, a.ngeom, a.nq, a.nu, a.nmesh, a.nmeshvert, a.ntex, a.nmat) != (
            b.nbody, b.njnt, b.ngeom, b.nq, b.nu, b.nmesh, b.nmeshvert, b.ntex, b.nmat):
        return False
    return bool(np.array_equal(a.names, b.names) and np.array_equal(a.geom_size, b.geom_size)
                and np.array_equal(a.geom_pos, b.geom_pos) and np.array_equal(a.body_mass, b.body_mass))


def copy_placement(src, dst) -> list[str]:
    """Make ``dst`` (same structure as ``src``, see :func:`_same_structure`) numerically equal to ``src``, a
    fresh compile of the same scene with another placement: every model array that differs is copied
    (root-body poses, qpos0/keyframes, the derived invweight0/M0 terms, …) and the model's extent/centre.
    Returns the names of the copied arrays."""
    copied = []
    for name in _array_fields(src):
        a, b = getattr(src, name), getattr(dst, name)
        if a.shape == b.shape and not np.array_equal(a, b):
            b[...] = a
            copied.append(name)
    dst.stat.extent, dst.stat.center[:] = src.stat.extent, src.stat.center
    dst.stat.meaninertia, dst.stat.meanmass, dst.stat.meansize = src.stat.meaninertia, src.stat.meanmass, src.stat.meansize
    return copied


def _build_scene(build, task, variant_names, seed: int, split: str, redraws: int = 8):
    """``build(task, variant_names, seed=, split=)``; when the random placement cannot fit the objects
    without overlap (a large pot and a spoon in a few % of seeds), redraw deterministically from seeds
    derived from ``seed``, so a reset stays a pure function of its seed. Returns (xml, info, scene seed)."""
    s = seed
    for k in range(redraws + 1):
        try:
            xml, info = build(task, variant_names, seed=s, split=split)
            return xml, info, s
        except RuntimeError as exc:
            if "could not place" not in str(exc):
                raise
            s = int(np.random.default_rng([seed, k + 1, 13]).integers(0, 2**31 - 1))
    raise RuntimeError(f"could not place the objects of {task!r} for seed {seed} (also tried {redraws} derived seeds)")


def _mujoco():
    return require_package("mujoco", "mujoco", extra="sim")


class SimWorld:
    """MuJoCo model + data of the workcell, stepping, reset, rendering and task snapshots."""

    #: control period (s): arm joint targets are interpolated at this rate
    control_dt = 0.01
    #: compiled scenes kept (each holds its renderers' GL contexts)
    max_cached_models = 6

    def __init__(self) -> None:
        self.mj = _mujoco()
        self.model = self.data = self.info = None
        self.task: str | None = None
        self.seed = 0
        self.scene_seed = 0  #: the seed the placement was drawn from (≠ seed after a redraw, see _build_scene)
        self.split = "train"
        self._renderers: dict = {}
        #: (task, variants) → (model, data, renderers), most recently used last
        self._cache: "OrderedDict[tuple, tuple]" = OrderedDict()
        self._frame_hooks: list[Callable[["SimWorld"], None]] = []
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle
    @property
    def loaded(self) -> bool:
        return self.model is not None

    def reset(self, task: str | None = None, seed: int = 0, split: str = "train", variant_names=None,
              settle_s: float = 0.3) -> None:
        """New scene for ``task`` from ``seed`` (variants from ``split`` unless ``variant_names``): apply the
        task arrangement, put the arm at ``home`` with the hand open, let objects settle ``settle_s``.

        A compiled model (and its renderers) is kept per (task, object variants): when only the placement
        changes, the freshly compiled scene's differing arrays are copied into the cached model
        (:func:`copy_placement`) instead of re-creating the renderer, which costs ~0.7 s on CPU EGL."""
        from deft_core.world.robot_scene import build_robot_scene
        from robot.sim.arrange import arrange

        mj = self.mj
        with self.lock:
            xml, info, self.scene_seed = _build_scene(build_robot_scene, task, variant_names, int(seed), split)
            fresh = mj.MjModel.from_xml_string(xml)
            key = (task, tuple(sorted((r, o.variant) for r, o in info.objects.items())))
            cached = self._cache.get(key)
            if cached is not None and _same_structure(cached[0], fresh):
                model, data, renderers = cached
                copy_placement(fresh, model)
            else:
                if cached is not None:
                    for r in cached[2].values():
                        r.close()
                model, data, renderers = fresh, mj.MjData(fresh), {}
                while len(self._cache) >= self.max_cached_models:  # evict the oldest entry
                    _, (_, _, old) = self._cache.popitem(last=False)
                    for r in old.values():
                        r.close()
            self._cache[key] = (model, data, renderers)
            self._cache.move_to_end(key)
            self.model, self.data, self._renderers = model, data, renderers
            self.info, self.task, self.seed, self.split = info, task, int(seed), split
            mj.mj_resetDataKeyframe(self.model, self.data, self.model.key("home").id)
            self._index()
            arrange(self, np.random.default_rng([int(seed), 7]))
            mj.mj_forward(self.model, self.data)
            self.advance(settle_s)
            self.data.time = 0.0

    def ensure_loaded(self) -> None:
        if not self.loaded:
            self.reset(None, 0)

    def _index(self) -> None:
        m, info = self.model, self.info
        self.arm_qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in info.arm_joints])
        self.arm_act = np.array([m.actuator(n).id for n in info.arm_actuators])
        self.hand_qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in info.hand_joints])
        self.hand_act = np.array([m.actuator(n).id for n in info.hand_actuators])
        roles = np.full(m.ngeom, SEGMENT_IDS["background"])
        names = {v: k for k, v in SEGMENT_IDS.items()}
        prefixes = {"arm/": "arm", "hand/": "hand"}
        prefixes.update({o.prefix: role for role, o in info.objects.items()})
        for g in range(m.ngeom):
            body = m.body(m.geom_bodyid[g]).name
            if m.geom(g).name == "table":
                roles[g] = SEGMENT_IDS["table"]
            for p, role in prefixes.items():
                if body.startswith(p):
                    roles[g] = SEGMENT_IDS[role]
        self.geom_role_id = roles
        self.geom_role = [names[int(r)] for r in roles]

    # ------------------------------------------------------------------ stepping
    def advance(self, seconds: float) -> None:
        """Step physics for ``seconds`` of simulated time (calls frame hooks, e.g. the video recorder)."""
        mj, m, d = self.mj, self.model, self.data
        n = int(round(max(0.0, seconds) / m.opt.timestep))
        for _ in range(n):
            mj.mj_step(m, d)
            for hook in self._frame_hooks:
                hook(self)

    def add_frame_hook(self, hook: Callable[["SimWorld"], None]) -> None:
        self._frame_hooks.append(hook)

    def remove_frame_hook(self, hook) -> None:
        if hook in self._frame_hooks:
            self._frame_hooks.remove(hook)

    @property
    def time(self) -> float:
        return float(self.data.time) if self.loaded else 0.0

    # ------------------------------------------------------------------ state
    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self.arm_qadr].copy()

    def hand_q(self) -> np.ndarray:
        return self.data.qpos[self.hand_qadr].copy()

    def set_arm_targets(self, q) -> None:
        self.data.ctrl[self.arm_act] = q

    def set_hand_targets(self, q) -> None:
        self.data.ctrl[self.hand_act] = q

    def site_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.data.site(name)
        return s.xpos.copy(), s.xmat.reshape(3, 3).copy()

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        b = self.data.body(name)
        return b.xpos.copy(), b.xmat.reshape(3, 3).copy()

    def contacts(self) -> frozenset:
        """Role pairs in contact now, e.g. ``("hand", "object")`` (sorted tuples)."""
        d, role = self.data, self.geom_role
        pairs = set()
        for i in range(d.ncon):
            c = d.contact[i]
            a, b = role[c.geom1], role[c.geom2]
            if a != b:
                pairs.add(tuple(sorted((a, b))))
        return frozenset(pairs)

    def snapshot(self, phase: str):
        """The task-relevant state now as a :class:`robot.tasks.Snapshot`."""
        from robot.tasks.base import BodyState, Snapshot

        bodies, points, joints = {}, {}, {}
        for role, obj in self.info.objects.items():
            p, R = self.body_pose(obj.mjcf.root_body)
            bodies[role] = BodyState(p, R)
            for region, site in obj.mjcf.sites.items():
                points[f"{role}:{region}"] = self.data.site(site).xpos.copy()
            for jn, jname in obj.mjcf.joints.items():
                joints[jn] = float(self.data.qpos[self.model.jnt_qposadr[self.model.joint(jname).id]])
        tcp, _ = self.site_pose(self.info.tcp_site)
        points["tcp"] = tcp
        return Snapshot(phase, self.time, bodies, points, joints, self.contacts())

    # ------------------------------------------------------------------ rendering
    def _renderer(self, width: int, height: int):
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = self.mj.Renderer(self.model, height, width)
        return self._renderers[key]

    def render(self, width: int, height: int, depth: bool = True, segmentation: bool = True, camera: str | None = None):
        """Render the camera (default: the scene's ``overhead``) → ``(rgb uint8, depth float32 m or None,
        mask int32 role ids or None)``. Depth is the distance along the optical axis (MuJoCo's
        renderer linearises its z-buffer with the model's near/far planes)."""
        cam = camera or self.info.camera
        r = self._renderer(width, height)
        r.update_scene(self.data, cam)
        rgb = r.render().copy()
        dep = mask = None
        if depth:
            r.enable_depth_rendering()
            r.update_scene(self.data, cam)
            dep = r.render().astype(np.float32)
            r.disable_depth_rendering()
        if segmentation:
            r.enable_segmentation_rendering()
            r.update_scene(self.data, cam)
            seg = r.render()
            r.disable_segmentation_rendering()
            ids = seg[..., 0]
            geom = seg[..., 1] == int(self.mj.mjtObj.mjOBJ_GEOM)
            mask = np.where(geom & (ids >= 0), self.geom_role_id[np.clip(ids, 0, None)], 0).astype(np.int32)
        return rgb, dep, mask

    def close_renderers(self) -> None:
        """Close every renderer of every cached scene (and forget the cached scenes)."""
        for _, _, renderers in self._cache.values():
            for r in renderers.values():
                r.close()
        for r in self._renderers.values():
            r.close()
        self._cache.clear()
        self._renderers = {}


class SimClock:
    """The executor's clock in simulation: ``now`` is simulated time, ``sleep`` steps physics."""

    def __init__(self, world: SimWorld):
        self.world = world

    def now(self) -> float:
        return self.world.time

    def sleep(self, seconds: float) -> None:
        self.world.advance(seconds)


_WORLDS: dict[str, SimWorld] = {}


def shared_world(name: str = "default") -> SimWorld:
    """The process-wide :class:`SimWorld` called ``name`` (created on first use, empty until reset)."""
    if name not in _WORLDS:
        _WORLDS[name] = SimWorld()
    return _WORLDS[name]
