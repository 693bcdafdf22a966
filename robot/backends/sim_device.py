"""What the ``sim`` arm, hand and camera share: they act on one :class:`robot.sim.world.SimWorld`
(named by their config's ``world``), attached on ``connect`` and released on ``disconnect``.
MuJoCo is imported only on connect, so importing a backend stays cheap."""

from __future__ import annotations

from robot.base import DeviceAlreadyConnectedError


class SharedWorldDevice:
    """Mixin (list it before the Arm/Hand/Camera base) providing ``is_connected``/``connect``/``disconnect``.
    Subclasses may override ``_after_connect`` and ``_before_disconnect``."""

    world = None

    @property
    def is_connected(self) -> bool:
        return self.world is not None

    def connect(self) -> None:
        if self.world is not None:
            raise DeviceAlreadyConnectedError(f"{type(self).__name__} is already connected")
        from robot.sim.world import shared_world

        self.world = shared_world(self.config.world)
        self.world.ensure_loaded()
        self._after_connect()

    def disconnect(self) -> None:
        if self.world is not None:
            self._before_disconnect()
        self.world = None

    def _after_connect(self) -> None:
        pass

    def _before_disconnect(self) -> None:
        pass
