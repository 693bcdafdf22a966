"""Device backends, selected by name through :mod:`robot.registry` (never imported by side effect).
Hardware SDKs are imported lazily inside the backend that needs them."""
