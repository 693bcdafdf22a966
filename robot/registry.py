"""Backend name → import string tables (DESIGN.md §4). Nothing is registered by import side effect and
nothing heavy is imported here: :func:`resolve` imports the one backend module it is asked for.

A backend is a class implementing :class:`robot.base.Arm`, :class:`~robot.base.Hand` or
:class:`~robot.base.Camera`, with a ``Config`` dataclass attribute (its options, validated in
``__post_init__``) and a constructor ``Backend(config, safety=None)`` (cameras: ``Backend(config)``).
"""

from __future__ import annotations

import importlib

from robot.base import ConfigError

ARM_BACKENDS: dict[str, str] = {
    "sim": "robot.backends.sim_arm:SimArm",
    "xarm": "robot.backends.xarm:XArmArm",
    "fake": "robot.backends.fake:FakeArm",
}
HAND_BACKENDS: dict[str, str] = {
    "sim": "robot.backends.sim_hand:SimHand",
    "dynamixel": "robot.backends.dynamixel:DynamixelHand",
    "fake": "robot.backends.fake:FakeHand",
}
CAMERA_BACKENDS: dict[str, str] = {
    "sim": "robot.backends.sim_camera:SimCamera",
    "realsense": "robot.backends.realsense:RealSenseCamera",
    "fake": "robot.backends.fake:FakeCamera",
}
BACKENDS: dict[str, dict[str, str]] = {"arm": ARM_BACKENDS, "hand": HAND_BACKENDS, "camera": CAMERA_BACKENDS}


def resolve(kind: str, name: str) -> type:
    """The backend class registered as ``name`` for device ``kind`` ('arm', 'hand' or 'camera')."""
    if kind not in BACKENDS:
        raise ConfigError(f"unknown device kind {kind!r}; expected one of {sorted(BACKENDS)}")
    table = BACKENDS[kind]
    if name not in table:
        raise ConfigError(f"unknown {kind} backend {name!r}; known {kind} backends: {', '.join(table)}")
    module_name, _, attr = table[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(f"{kind} backend {name!r} is registered as {table[name]!r}, but module "
                              f"{module_name!r} is not part of this installation") from exc
        raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{kind} backend {name!r}: {module_name!r} has no attribute {attr!r}") from None
