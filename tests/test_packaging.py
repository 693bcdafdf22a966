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


def test_no_module_imports_against_the_dependency_rule():
    """Statically, every import in every module (also the ones inside functions): deft_core imports none of
    ray, pipelines, robot, jobs; robot none of ray, pipelines, jobs; pipelines neither robot nor jobs."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rules = {"deft_core": {"ray", "pipelines", "robot", "jobs"}, "robot": {"ray", "pipelines", "jobs"},
             "pipelines": {"robot", "jobs"}}
    bad = []
    for pkg, banned in rules.items():
        files = sorted((root / pkg).rglob("*.py"))
        assert files, pkg
        for f in files:
            for node in ast.walk(ast.parse(f.read_text(), str(f))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                bad += [f"{f.relative_to(root)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in banned]
    assert not bad, bad


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
