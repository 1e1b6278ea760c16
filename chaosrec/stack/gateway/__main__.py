"""``python -m chaosrec.stack.gateway --config gateway.json``: run the gateway until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from chaosrec.errors import ChaosrecError
from chaosrec.stack.gateway.app import make_app
from chaosrec.stack.gateway.config import GatewayConfig
from chaosrec.stack.gateway.edge import log_handler, server_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaosrec.stack.gateway")
    parser.add_argument("--config", required=True, type=Path, help="gateway JSON config")
    args = parser.parse_args(argv)
    try:
        config = GatewayConfig.read(args.config, store_token=True)
    except (OSError, ValueError, KeyError, TypeError, ChaosrecError) as err:
        print(f"gateway: cannot read config {args.config}: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, handlers=[log_handler(config.admin_token)])
    web.run_app(
        make_app(config),
        host=config.host,
        port=config.port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),
        shutdown_timeout=2.0,
        **server_options(config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
