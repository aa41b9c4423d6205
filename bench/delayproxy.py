"""A TCP proxy on loopback that delays every byte by a fixed time in each direction.

    python bench/delayproxy.py LISTEN_PORT TARGET_PORT DELAY_MS PIDFILE

This kernel has no netem; the proxy stands in for a WAN link (Tailscale between sites): data
read at time t is written on the other side at t + delay, in order, without limiting bandwidth.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


async def main(listen: int, target: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w, delay), pipe(server_r, client_w, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen_port, target_port, delay_ms, pidfile = sys.argv[1:5]
    with open(pidfile, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    asyncio.run(main(int(listen_port), int(target_port), int(delay_ms) / 1000))
