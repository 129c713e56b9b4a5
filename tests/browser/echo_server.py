#!/usr/bin/env python3
"""WebSocket echo server for anyloop's browser tests, demo and benchmark.

Uses the `websockets` package (installed by the justfile in a venv under the
target dir). Listens on 127.0.0.1 only. On one port it:

* echoes every WebSocket message back as it came (text as text, binary as
  binary), on any path, offering the subprotocol "echo.v1";
* obeys a few text commands, for the tests:
    "!close CODE REASON"  close with that code and reason,
    "!drop"               drop the TCP connection without a close frame;
* with --static DIR, answers plain HTTP GETs with the files of DIR (the
  demo page and its wasm module).

It prints "listening on http://127.0.0.1:PORT/" when ready (PORT is free if
0 was asked for), writes PORT to --port-file if given, and serves until
interrupted or until --lifetime seconds have passed.
"""

import argparse
import asyncio
import logging
import mimetypes
import os
import signal
import sys
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response


async def echo(ws):
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("!"):
                parts = message.split(" ", 2)
                if parts[0] == "!close":
                    await ws.close(int(parts[1]), parts[2] if len(parts) > 2 else "")
                    return
                if parts[0] == "!drop":
                    ws.transport.abort()
                    return
            await ws.send(message)
    except Exception:
        pass  # a client that vanished is no error for an echo server


def select_subprotocol(connection, offered):
    # "echo.v1" if the client offers it; no subprotocol otherwise (the
    # library's default would refuse clients that offer none).
    return "echo.v1" if "echo.v1" in offered else None


def static_files(root):
    root = os.path.realpath(root)

    def process_request(connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None  # go on with the WebSocket handshake
        path = request.path.split("?", 1)[0].lstrip("/") or "index.html"
        full = os.path.realpath(os.path.join(root, path))
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        with open(full, "rb") as f:
            body = f.read()
        ctype = "application/wasm" if full.endswith(".wasm") else (mimetypes.guess_type(full)[0] or "text/plain")
        headers = Headers(
            [
                ("Content-Type", ctype),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ]
        )
        return Response(200, "OK", headers, body)

    return process_request


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--static", help="serve the files of this directory over HTTP")
    ap.add_argument("--page", default="", help="path of the page to print in the URL")
    ap.add_argument("--lifetime", type=float, default=0, help="exit after this many seconds (0: never)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="echo server: %(message)s")

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    if args.lifetime > 0:
        asyncio.get_running_loop().call_later(args.lifetime, lambda: stop.done() or stop.set_result(None))

    async with serve(
        echo,
        "127.0.0.1",
        args.port,
        select_subprotocol=select_subprotocol,
        compression=None,
        max_size=64 * 1024 * 1024,
        max_queue=None,
        process_request=static_files(args.static) if args.static else None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write(f"{port}\n")
            os.replace(args.port_file + ".tmp", args.port_file)
        print(f"listening on http://127.0.0.1:{port}/{args.page}", flush=True)
        await stop


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
