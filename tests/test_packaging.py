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


def test_cli_group_help_lists_the_group_commands(capsys):
    from pipelines.cli import main

    capsys.readouterr()
    for argv, commands in ((["data", "--help"], ("synth", "show", "trajectory", "evaluate")), (["model", "-h"], ("evaluate",)),
                           (["data"], ("synth", "trajectory"))):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert f"usage: deft {argv[0]} COMMAND" in out and all(f"\n  {c} " in out for c in commands), out
    assert main(["data", "nope"]) == 2  # an unknown subcommand still fails
