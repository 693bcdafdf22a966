"""Robot-process start time: wall time of ``deft-robot --help`` and of ``import robot`` in fresh
interpreters (best of N), and whether mujoco / ray got imported. Prints one JSON object."""

import json
import subprocess
import sys
import time


def timed(code: str) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, out


def main(n: int = 5) -> None:
    check = "import sys; print(','.join(m for m in ('mujoco', 'ray', 'torch') if m in sys.modules))"
    helps, imports, loaded = [], [], ""
    for _ in range(n):
        dt, _ = timed("import robot.cli, io, contextlib\nwith contextlib.redirect_stdout(io.StringIO()): robot.cli.main(['--help'])")
        helps.append(dt)
        dt, loaded = timed("import robot, robot.tasks, robot.executor; " + check)
        imports.append(dt)
    print(json.dumps({"deft_robot_help_s": min(helps), "import_robot_s": min(imports), "runs": n,
                      "heavy_modules_loaded_by_import": loaded.strip() or None, "under_2s": max(min(helps), min(imports)) < 2.0}))


if __name__ == "__main__":
    main()
