"""The dependency rule of DESIGN.md §2 and the CLIs' basic behaviour."""

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_robot_and_core_never_import_ray_or_pipelines():
    out = _run(
        "import sys, robot, robot.cli, deft_core, deft_core.schema, deft_core.geometry, deft_core.grasp\n"
        "from robot.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pipelines')))"
    )
    assert out.strip().splitlines()[-1] == "[]"


def test_cli_unknown_command_fails_clearly():
    from pipelines.cli import main

    assert main(["nonsense"]) == 2
    assert main(["--help"]) == 0
