"""Robot configuration: one YAML file per setup, validated on load with errors naming the file and field.

Layout (see ``robot/configs/lab_xarm6.yaml``)::

    name: lab_xarm6
    arm:    {backend: xarm, ip: 192.168.1.208, ...}          # backend name + that backend's options
    hand:   {backend: dynamixel, port: /dev/ttyUSB0, motor_ids: [...], current_limit_ma: 350, ...}
    camera: {backend: realsense, serial: "...", T_base_camera: [[4x4]], ...}
    safety:
      workspace: {lower: [x, y, z], upper: [x, y, z]}        # metres, robot base frame
      table_z: 0.0                                            # the table plane's height (m)
      min_clearance_m: 0.02
      max_step_m: 0.05
      max_rot_step_rad: 0.5
      max_speed_m_s: 0.25
      default_speed_m_s: 0.10
      hand_lower: null                                        # 16 rad or null = the robot hand's limits
      hand_upper: null
    executor:                                                 # optional: grasp geometry and pacing
      contact_offset: [0.0, 0.0, 0.01]                        # μ in the wrist frame (m); see below
      pregrasp_distance_m: 0.08
      squeeze_rad: 0.2
    retarget:                                                 # optional: MANO pose → this hand's joints
      offset: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 0, 0, 0]   # rad, HAND_JOINT_NAMES order

The options of each device section (everything but ``backend`` and, for the camera, ``T_base_camera``)
go to the backend's ``Config`` dataclass (:mod:`robot.registry`), which validates them. ``T_base_camera``
is the 4×4 transform from the camera's OpenCV frame to the robot base frame (metres).

``executor`` holds :class:`robot.executor.ExecutorConfig`'s fields (approach axis and contact offset in the
wrist frame, pre-grasp distance, hover height, speeds, squeeze margin, closing time); the ones not given
keep :data:`LAB_EXECUTOR_DEFAULTS` (the simulated hand's geometry: palm normal = wrist z, μ 1 cm in front
of the palm) and ExecutorConfig's defaults. ``retarget`` holds :class:`deft_core.retarget.RetargetConfig`'s
fields (``scale``/``offset``: 16 each, ``side_sign``, ``thumb_side_sign``, ``clip``, ``lower``/``upper``):
a per-joint linear correction of the affordance model's retargeted hand pose for a hand whose joints do
not match the human's one to one; absent = Appendix C's joint-to-joint map unchanged. Both only act on the
lab robot (:class:`robot.real_env.RealFinetuneEnv`); a fine-tuning run records the resolved settings that
differ from the defaults and act on its prior (``RunMeta.extra``; ``retarget`` only for the affordance
prior), so a run is not resumed or evaluated under other geometry.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot.base import ConfigError
from robot.safety import ArmSafety, HandSafety

_SELF_LOCATED_CAMERAS = ("sim", "fake")
#: the lab robot's grasp geometry unless the YAML's ``executor`` section says otherwise: the wrist frame is the
#: palm centre with the simulated hand's axes (z = palm normal = approach direction) and the contact point μ
#: sits 1 cm in front of the palm (docs/finetune-cli.md, "The wrist frame")
LAB_EXECUTOR_DEFAULTS = {"approach_axis": (0.0, 0.0, 1.0), "contact_offset": (0.0, 0.0, 0.01)}
_SAFETY_KEYS = {"workspace", "table_z", "min_clearance_m", "max_step_m", "max_rot_step_rad", "max_speed_m_s",
                "default_speed_m_s", "hand_lower", "hand_upper"}


def build_dataclass(cls: type, data: Any, where: str):
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown and missing fields; any
    ``ValueError``/``TypeError`` from its validation becomes a :class:`ConfigError` prefixed by ``where``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}: {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(fields)}")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing required field(s) {missing}")
    try:
        return cls(**data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _transform(value: Any, where: str) -> np.ndarray:
    try:
        T = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be a 4x4 matrix of numbers, got {value!r}") from None
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ConfigError(f"{where}: must be a finite 4x4 matrix, got shape {T.shape}")
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1]) or not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise ConfigError(f"{where}: is not a rigid transform (rotation block orthonormal, last row 0 0 0 1)")
    return T


@dataclass
class DeviceConfig:
    """One device section: ``kind`` ('arm'/'hand'/'camera'), ``backend`` name, validated ``options``
    (the backend's ``Config`` instance, or the raw mapping when not yet validated)."""

    kind: str
    backend: str
    options: Any
    #: cameras only: camera (OpenCV axes) → robot base, 4×4, metres; None for 'sim'/'fake' cameras, which
    #: know their own pose
    T_base_camera: np.ndarray | None = None


@dataclass
class RobotConfig:
    """A whole setup. ``arm``/``hand``/``camera`` are :class:`DeviceConfig`; ``arm_safety`` and
    ``hand_safety`` are the driver-side limits; ``path`` is the file it came from (None if built in code)."""

    name: str
    arm: DeviceConfig
    hand: DeviceConfig
    camera: DeviceConfig
    arm_safety: ArmSafety = field(default_factory=ArmSafety)
    hand_safety: HandSafety = field(default_factory=HandSafety)
    path: Path | None = None
    #: the YAML's ``executor`` section merged over :data:`LAB_EXECUTOR_DEFAULTS` (None: no section, or one that
    #: restates the defaults)
    executor: Any = None
    #: the YAML's ``retarget`` section as a :class:`deft_core.retarget.RetargetConfig` (None: identity map)
    retarget: Any = None
    #: the two sections' resolved settings that differ from the defaults (JSON-able; what a run records so
    #: that it is not resumed or evaluated under others)
    geometry: dict = field(default_factory=dict)

    def executor_config(self):
        """The :class:`robot.executor.ExecutorConfig` grasps are executed with (the YAML's or the default)."""
        from robot.executor import ExecutorConfig

        return self.executor if self.executor is not None else ExecutorConfig(**LAB_EXECUTOR_DEFAULTS)

    def make_arm(self):
        from robot.registry import resolve

        return resolve("arm", self.arm.backend)(self.arm.options, safety=self.arm_safety)

    def make_hand(self):
        from robot.registry import resolve

        return resolve("hand", self.hand.backend)(self.hand.options, safety=self.hand_safety)

    def make_camera(self):
        from robot.registry import resolve

        return resolve("camera", self.camera.backend)(self.camera.options)


def _device(kind: str, raw: Any, where: str, validate_backends: bool) -> DeviceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with at least 'backend', got {raw!r}")
    raw = dict(raw)
    backend = raw.pop("backend", None)
    if not isinstance(backend, str) or not backend:
        raise ConfigError(f"{where}.backend: required, a backend name (e.g. 'sim', 'fake')")
    from robot.registry import BACKENDS, resolve

    if backend not in BACKENDS[kind]:
        raise ConfigError(f"{where}.backend: unknown {kind} backend {backend!r}; known: {', '.join(BACKENDS[kind])}")
    T = None
    if kind == "camera":
        if raw.get("T_base_camera") is not None:
            T = _transform(raw.pop("T_base_camera"), f"{where}.T_base_camera")
        elif backend in _SELF_LOCATED_CAMERAS:
            raw.pop("T_base_camera", None)  # the simulator / fake camera knows where it is
        else:
            raise ConfigError(f"{where}.T_base_camera: required for a {backend!r} camera (4x4 camera→base "
                              f"transform, metres); measure it with 'deft-robot calibrate-camera'")
    options: Any = raw
    if validate_backends:
        cls = resolve(kind, backend)
        options = build_dataclass(cls.Config, raw, f"{where} (backend {backend!r})")
    return DeviceConfig(kind, backend, options, T)


def _safety(raw: Any, where: str) -> tuple[ArmSafety, HandSafety]:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - _SAFETY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(_SAFETY_KEYS)}")
    arm = {k: v for k, v in raw.items() if k not in ("workspace", "hand_lower", "hand_upper")}
    if "workspace" in raw:
        ws = raw["workspace"]
        if not isinstance(ws, dict) or set(ws) != {"lower", "upper"}:
            raise ConfigError(f"{where}.workspace: must be a mapping with 'lower' and 'upper' (3 numbers each, metres)")
        arm["workspace_lower"], arm["workspace_upper"] = ws["lower"], ws["upper"]
    arm_safety = build_dataclass(ArmSafety, arm, where)
    hand_safety = build_dataclass(HandSafety, {"lower": raw.get("hand_lower"), "upper": raw.get("hand_upper")}, where)
    return arm_safety, hand_safety


def parse_robot_config(data: Any, source: str = "<config>", validate_backends: bool = True) -> RobotConfig:
    """Validate a parsed YAML mapping. ``validate_backends=False`` skips importing the backends to check
    their options (used to inspect a file for a backend that is not installed here)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    known = {"name", "arm", "hand", "camera", "safety", "executor", "retarget"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown top-level field(s) {unknown}; known: {sorted(known)}")
    for key in ("name", "arm", "hand", "camera"):
        if key not in data:
            raise ConfigError(f"{source}: missing required top-level field {key!r}")
    if not isinstance(data["name"], str) or not data["name"]:
        raise ConfigError(f"{source}: name: must be a non-empty string")
    devices = {k: _device(k, data[k], f"{source}: {k}", validate_backends) for k in ("arm", "hand", "camera")}
    arm_safety, hand_safety = _safety(data.get("safety"), f"{source}: safety")
    executor, retarget, geometry = _geometry(data, source)
    return RobotConfig(data["name"], devices["arm"], devices["hand"], devices["camera"], arm_safety, hand_safety,
                       executor=executor, retarget=retarget, geometry=geometry)


def _geometry(data: dict, source: str):
    """The optional ``executor`` and ``retarget`` sections → (ExecutorConfig | None, RetargetConfig | None,
    the resolved settings that differ from the defaults). Each section must be a mapping of its dataclass's
    fields; errors name the field. A section that resolves to the defaults (empty, or restating them) is
    the same as no section, so it neither changes the grasps nor makes a run refuse the file."""
    from deft_core.retarget import RetargetConfig
    from robot.executor import ExecutorConfig

    geometry = {}
    executor = _section(data, "executor", ExecutorConfig, LAB_EXECUTOR_DEFAULTS, source, geometry)
    retarget = _section(data, "retarget", RetargetConfig, {}, source, geometry)
    return executor, retarget, geometry


def _section(data: dict, name: str, cls: type, defaults: dict, source: str, geometry: dict):
    """One optional section: ``cls`` built from ``defaults`` updated by the section, or None when the section
    is absent or resolves to ``cls(**defaults)``; the settings that differ go to ``geometry[name]``."""
    raw = data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {name}: expected a mapping of {cls.__name__} fields, got {raw!r}")
    config = build_dataclass(cls, {**defaults, **raw}, f"{source}: {name}")
    resolved, default = _settings(config), _settings(cls(**defaults))
    changed = {k: v for k, v in resolved.items() if v != default[k]}
    if not changed:
        return None
    geometry[name] = changed
    return config


#: the sections that act on each prior's grasps (``retarget`` corrects the MANO pose the affordance model
#: predicts; the real-world-only prior's half-closed hand is given in robot joints)
GEOMETRY_SECTIONS = {"affordance": ("executor", "retarget")}


def _relevant(geometry: dict, prior: str) -> dict:
    return {k: v for k, v in geometry.items() if k in GEOMETRY_SECTIONS.get(prior, ("executor",))}


def geometry_record(cfg: RobotConfig, prior: str) -> dict:
    """What a run with ``prior`` records of the YAML's geometry (``RunMeta.extra``): the settings that differ
    from the defaults and act on that prior's grasps; ``{}`` when none do, so runs made before these sections
    existed still match a YAML without them."""
    relevant = _relevant(cfg.geometry, prior)
    return {"robot_geometry": relevant} if relevant else {}


def check_geometry(cfg: RobotConfig, extra: dict, prior: str, run: str) -> None:
    """Refuse to execute a run's grasps under other ``executor``/``retarget`` settings than it was
    fine-tuned with (its ε and δ̂ are residuals in that geometry); ``extra`` is the run's ``RunMeta.extra``,
    ``prior`` its prior, ``run`` its directory (for the message)."""
    recorded = (extra or {}).get("robot_geometry", {})
    now = _relevant(cfg.geometry, prior)
    if recorded != now:
        names = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
        detail = "; ".join(f"{k}: run has {recorded.get(k)!r}, YAML has {now.get(k)!r}" for k in names)
        raise ConfigError(f"{cfg.path or cfg.name}: the {' and '.join(names)} section(s) differ from those the run "
                          f"{run} was fine-tuned with ({detail}; None = the defaults); its residuals belong to that "
                          "geometry: restore the section(s) or fine-tune a new run")


def _settings(config) -> dict:
    """A config dataclass's init fields as plain JSON values (floats, lists, bools)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config) if f.init}


def _plain(value: Any) -> Any:
    """Resolved settings as plain JSON types (tuples and arrays → lists, numpy scalars → Python numbers, ints
    of float fields → floats), so that what a run recorded compares equal after the JSON round trip."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if isinstance(value, (float, np.floating)) else int(value)
    return value


def load_robot_config(path: str | os.PathLike, validate_backends: bool = True) -> RobotConfig:
    """Load and validate a robot YAML file (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"robot config {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    cfg = parse_robot_config(data, str(path), validate_backends)
    cfg.path = path
    return cfg


def update_robot_config(path: str | os.PathLike, keys: tuple[str, ...], value: Any) -> None:
    """Set one nested field (e.g. ``("camera", "T_base_camera")``) in a robot YAML file and re-validate it
    before writing (atomically, via a temporary file). Only that value's text is replaced, so the file's
    comments (safety notes, how a value was measured) and layout survive; the edited text is re-parsed
    and must give exactly the updated data, else the whole file is re-written without comments."""
    import yaml

    path = Path(path)
    text = path.read_text()
    data = yaml.safe_load(text)
    node = data
    for k in keys[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(k), dict):
            raise ConfigError(f"{path}: cannot set {'.'.join(keys)}: {k!r} is not a mapping")
        node = node[k]
    node[keys[-1]] = value.tolist() if isinstance(value, np.ndarray) else value
    try:  # the backend's own options too: a calibration the backend does not take (a fake hand) is refused
        parse_robot_config(data, str(path), validate_backends=True)
    except ImportError:  # its driver is not installed here: check the structure only
        parse_robot_config(data, str(path), validate_backends=False)
    try:
        new_text = _replace_yaml_value(text, keys, node[keys[-1]])
        kept = new_text is not None and yaml.safe_load(new_text) == data
    except yaml.YAMLError:
        kept = False
    if not kept:
        new_text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    from deft_core.finetune.episode_log import write_durable

    write_durable(path, new_text.encode("utf-8"))  # calibration and safety limits: never a half-written file


def _node_end(node) -> int:
    """Where a node's own text ends: a block collection's end mark is the next token (the following key,
    after any comments and newlines), so use its last child's end instead."""
    import yaml

    if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        return _node_end(last[1] if isinstance(node, yaml.MappingNode) else last)
    return node.end_mark.index


def _replace_yaml_value(text: str, keys: tuple[str, ...], value: Any) -> str | None:
    """``text`` with the value at ``keys`` replaced by ``value`` in YAML flow style, everything else kept
    byte for byte; None when the key is not there (a new key: the caller re-dumps the file)."""
    import yaml

    node = yaml.compose(text)
    for k in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for kn, v in node.value if isinstance(kn, yaml.ScalarNode) and kn.value == k), None)
        if node is None:
            return None
    def flow(v) -> str:
        out = yaml.safe_dump(v, default_flow_style=True, width=1 << 16).strip()
        return out[:-3].strip() if out.endswith("...") else out  # a bare scalar document ends with '...'

    start, end = node.start_mark.index, _node_end(node)
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and isinstance(value, list) and value:
        # a block list stays a block list (a matrix keeps one row per line)
        indent = "\n" + " " * node.start_mark.column
        return text[:start] + indent.join(f"- {flow(v)}" for v in value) + text[end:]
    return text[:start] + flow(value) + text[end:]


def example_config_path(name: str) -> Path:
    """Path of a bundled example config (``sim``, ``lab_xarm6``, ``lab_fake``) in ``robot/configs``."""
    p = Path(__file__).with_name("configs") / f"{name}.yaml"
    if not p.is_file():
        raise ConfigError(f"no bundled robot config {name!r} (looked for {p})")
    return p
