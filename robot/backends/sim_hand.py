"""``sim`` hand: the 16-DoF hand of the MuJoCo workcell. Targets go to the hand's compliant position
servos (torque limited, like current-limited Dynamixels); readback is the simulated joint angles.
Sending does not advance time: fingers move while the world steps (arm moves, ``SimClock.sleep``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot.base import Hand, HandState, now
from robot.backends.sim_device import SharedWorldDevice


@dataclass
class SimHandConfig:
    """``world``: name of the shared :class:`robot.sim.world.SimWorld`."""

    world: str = "default"


class SimHand(SharedWorldDevice, Hand):
    Config = SimHandConfig

    def __init__(self, config: SimHandConfig | None = None, safety=None):
        super().__init__(safety)
        self.config = config or SimHandConfig()
        self.world = None

    def _command_joints(self, joints: np.ndarray) -> None:
        self.world.set_hand_targets(joints)

    def _read_state(self) -> HandState:
        # no motor currents in simulation (HandState.current_ma stays None)
        return HandState(joints=self.world.hand_q(), timestamp=now())
