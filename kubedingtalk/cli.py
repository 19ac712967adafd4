"""The ``kubedingtalk`` command: parse arguments, load settings, hand over.

Exit codes: 0 success, 1 a runtime failure, 2 bad settings or bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from kubedingtalk import __version__, log
from kubedingtalk.config import ConfigError, Settings

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubedingtalk",
        description="Watch a Kubernetes cluster and announce failing pods in a DingTalk group.",
        epilog="Settings come from environment variables; see the README or `kubedingtalk config`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run", help="start the service (the default)",
        description="Watch pods and post alerts until SIGTERM or SIGINT; exits 0 after a clean stop.",
    )
    commands.add_parser(
        "config", help="print the effective settings as JSON, secrets redacted",
        description="Validate the environment's settings and print them as JSON (secrets as ***). "
                    "Exits 2 with one line per problem when they are invalid.",
    )
    check = commands.add_parser(
        "check-pod", help="would this pod alert, and why?",
        description="Read what `kubectl get pod(s) -o json` prints (a Pod, a PodList or a List) and print one "
                    "JSON object per finding per line, with the service's own rules. NOT_READY_MIN_TIME applies.",
    )
    check.add_argument("file", nargs="?", default="-", help="a file, or - for standard input (the default)")
    check.add_argument("--now", help="evaluate at this RFC 3339 time instead of the current time")
    commands.add_parser(
        "send-test", help="post one test message with the current settings",
        description="Post one test message to the robot with the current DINGTALK_* settings and print DingTalk's "
                    "answer as JSON. Exits 0 when DingTalk accepts it, 1 otherwise with a hint of what to fix.",
    )
    commands.add_parser(
        "demo", help="play a failure scenario against the embedded emulators",
        description="Start the embedded Kubernetes and DingTalk emulators, play a scenario of failing and "
                    "healthy pods, and show what the DingTalk group would see. Needs no cluster, token or network.",
    )
    return parser


def load_settings(environ: Mapping[str, str]) -> Settings | None:
    """Settings, or None after printing every problem to stderr."""
    try:
        return Settings.from_env(environ)
    except ConfigError as exc:
        print("kubedingtalk: invalid settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from kubedingtalk import demo

        return demo.run()
    env = os.environ if environ is None else environ
    if args.command == "check-pod":
        from kubedingtalk import check_pod

        return check_pod.run(args.file, args.now, env)
    settings = load_settings(env)
    if settings is None:
        return EXIT_USAGE
    if args.command == "config":
        print(json.dumps(settings.redacted(), indent=2))
        return 0
    # Before send-test too: its error text passes the redactor, which must know the secrets.
    log.configure(settings.log_level, settings.log_format, settings.secrets())
    if args.command == "send-test":
        return send_test(settings, env)
    from kubedingtalk.service import run

    return run(settings)


def send_test(settings: Settings, environ: Mapping[str, str]) -> int:
    """The first thing to run after creating a robot: does a message get through, and if not, why?"""
    from kubedingtalk.dingtalk import OK, DingTalkClient
    from kubedingtalk.messages import Renderer

    url = settings.webhook_url
    if url is None:
        print("kubedingtalk send-test: DINGTALK_TOKEN is not set: expected the robot's access token or webhook URL",
              file=sys.stderr)
        return EXIT_USAGE
    renderer = Renderer(settings.cluster_name, settings.dingtalk_keyword, settings.dingtalk_at_mobiles,
                        settings.dingtalk_at_user_ids)
    answer = DingTalkClient(url, settings.dingtalk_secret, environ=environ).post(renderer.test_message().body())
    print(json.dumps({"errcode": answer.errcode, "errmsg": answer.errmsg, "http_status": answer.http_status,
                      "outcome": answer.outcome, "hint": answer.hint or None}, ensure_ascii=False))
    if answer.outcome != OK:
        print(f"kubedingtalk send-test: not delivered: {answer.hint or answer.errmsg}", file=sys.stderr)
        return 1
    return 0
