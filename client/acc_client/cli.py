"""The `acc` command: dispatch a jobflow from wkube.py, then follow and collect it.

Exit code 0 on success, 1 on any failure, with the reason as one line on
stderr: users act on the message, a traceback would only bury it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acc_client import __version__, commands
from acc_client.errors import AccError
from acc_client.outputs import download_outputs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints usage and exits 2
        print(f"acc: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acc", description="Dispatch and follow Accelerator jobs and jobflows.")
    parser.add_argument("--version", action="version", version=f"acc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("dispatch", help="upload job folders and dispatch the task tree of a wkube.py")
    p.add_argument("project", help="project slug")
    p.add_argument("variable", help="the WKubeTask variable in the workflow file (a task or a holder)")
    p.add_argument("-f", dest="file", default="wkube.py", help="workflow file (default: wkube.py)")
    p.set_defaults(run=lambda a: print(f"Dispatched root job #ID: {commands.dispatch(a.project, a.variable, a.file)}"))

    p = sub.add_parser("status", help="a job's status; for a jobflow also its nodes")
    p.add_argument("job_id", type=int)
    p.set_defaults(run=lambda a: commands.status(a.job_id))

    p = sub.add_parser("logs", help="print a job's log")
    p.add_argument("job_id", type=int)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the job has finished")
    p.add_argument(
        "--max-wait", type=float, default=24 * 3600, help="with -f, give up after this many seconds (default: a day)"
    )
    p.set_defaults(run=lambda a: commands.logs(a.job_id, follow=a.follow, max_wait=a.max_wait))

    p = sub.add_parser("cancel", help="cancel a job, or every node of a jobflow")
    p.add_argument("job_id", type=int)
    p.set_defaults(run=lambda a: commands.cancel(a.job_id))

    p = sub.add_parser("outputs", help="download a job's output files and verify their sha256")
    p.add_argument("job_id", type=int)
    p.add_argument("-o", dest="output", required=True, type=Path, help="folder to download into")
    p.set_defaults(run=lambda a: download_outputs(commands.connect(), a.job_id, a.output))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except AccError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:  # an unexpected failure is still one line, not a traceback
        return _fail(f"{type(exc).__name__}: {exc}")
    return 0


def _fail(message: str) -> int:
    print(f"acc: error: {' '.join(message.split())}", file=sys.stderr)
    return 1
