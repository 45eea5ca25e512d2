"""The `corrupt-bench` command line: a thin typer app. Every command lives in its area's `commands.py`
and calls a library function; a UserError becomes a one-line message and exit code 2."""

from __future__ import annotations

import importlib
import sys

import typer

from corrupt_bench.cli_utils import opencv_problems
from corrupt_bench.errors import UserError

# before the command modules, which import cv2: a missing OpenCV is one line, not a traceback
_OPENCV_ERROR, _OPENCV_WARNING = opencv_problems()
if _OPENCV_ERROR:
    typer.echo(f"error: {_OPENCV_ERROR}", err=True)
    raise SystemExit(2)
if _OPENCV_WARNING:
    typer.echo(f"warning: {_OPENCV_WARNING}", err=True)

app = typer.Typer(
    name="corrupt-bench",
    help="Generate corrupted Human3.6M benchmarks and score 3D human pose models on them.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module exposes `register(app)`; the order is the order of `--help`.
COMMAND_MODULES = (
    "corrupt_bench.data.commands",
    "corrupt_bench.data.synth_commands",
    "corrupt_bench.engine.commands",
    "corrupt_bench.generate.commands",
    "corrupt_bench.models.commands",
    "corrupt_bench.harness.commands",
    "corrupt_bench.reports.commands",
    "corrupt_bench.demo",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from corrupt_bench._version import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        code = app(args=argv, standalone_mode=False)  # click returns typer.Exit's code here instead of raising
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:
        from corrupt_bench.cli_utils import system_error

        error = system_error(exc)
        if error is None:
            raise
        typer.echo(f"error: {error}", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted: rerun the same command to resume", err=True)
        return 130
    except SystemExit as exc:  # typer.Exit and click's usage errors
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # click.UsageError and friends carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is not None:
            show = getattr(exc, "show", None)
            if show is not None:
                show()
            return int(code)
        raise
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
