"""The ``chatui`` command: parse the configuration, start the runtime, serve or chat."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rag_index import RagError

from chatui.config import parse_config
from chatui.embedded import EmbeddedServerError
from chatui.runtime import exit_on_sigterm, open_runtime


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = parse_config(argv)
    exit_on_sigterm()
    try:
        with open_runtime(config) as runtime:
            if config.command == "chat":
                from chatui.terminal import run_terminal_chat

                return run_terminal_chat(runtime.service)
            from chatui.server import serve

            return serve(runtime)
    except (EmbeddedServerError, RagError) as error:
        print(f"chatui: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
