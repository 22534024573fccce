"""`curate` command line: discovers subcommands in ``curation.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import curation.commands as commands_pkg


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="curate", description="Curate interleaved image-text corpora on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {}
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"curation.commands.{info.name}")
        if not hasattr(module, "NAME"):
            continue
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        handlers[module.NAME] = module.main
    return parser, handlers


def _ray_running() -> bool:
    ray = sys.modules.get("ray")  # never import Ray just to ask
    return ray is not None and ray.is_initialized()


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    ray_before = _ray_running()
    try:
        return int(handlers[args.command](args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        # Expected user errors (bad config, missing input): one clear line, no traceback.
        print(f"curate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if not ray_before and _ray_running():
            # The session this command started ends with it. Stopped here rather than
            # by Ray's exit hook, which first sleeps 0.5 s "for log messages" (ours
            # are written by then). A session that was running before (a test's, a
            # notebook's) is left as it was.
            from curation.runner.session import stop_ray

            stop_ray()


if __name__ == "__main__":
    sys.exit(main())
