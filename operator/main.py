"""Entry point of the `jaring-operator` console script: builds the `OperatorConfig` from
flags and `JARING_*` variables and runs Kopf with the handlers of `handlers.py`
(DESIGN.md, operator row; issue 5).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping, Sequence

import kopf
from jaring.operator.config import OperatorConfig, from_environ
from jaring.operator.handlers import OperatorState, build_registry


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jaring-operator",
        description="Validates NetworkAttachmentDefinitions and serves jaring's admission "
        "webhooks. Settings come from JARING_* environment variables.",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: the whole cluster",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="Kopf liveness endpoint ('' to disable)",
    )
    parser.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="an extra name for the webhook serving certificate (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


async def run(
    config: OperatorConfig,
    *,
    namespaces: Sequence[str] = (),
    liveness: str | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """The whole operator in the running loop until `stop` is set (tests, bench, main)."""
    state = OperatorState(config)
    await kopf.operator(
        registry=build_registry(state),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness or None,
        stop_flag=stop,
        ready_flag=ready,
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = from_environ(os.environ if environ is None else environ, argv_hostnames=args.hostname)
    asyncio.run(run(config, namespaces=args.namespace, liveness=args.liveness))


if __name__ == "__main__":
    main()
