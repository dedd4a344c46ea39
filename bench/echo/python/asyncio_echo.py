#!/usr/bin/env python3
"""asyncio echo server for coloop's load benchmarks: a Protocol whose data_received writes the data
back (asyncio's leanest path). `--uvloop` runs the same protocol on uvloop. Prints
"listening on HOST:PORT" when ready; exits 0 on SIGTERM.

  /usr/bin/python3 bench/echo/python/asyncio_echo.py --port 0 [--host 127.0.0.1] [--uvloop]
"""
import argparse
import asyncio
import signal
import sys


class Echo(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close


async def main(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await loop.create_server(Echo, args.host, args.port, backlog=4096, reuse_address=True)
    host, port = server.sockets[0].getsockname()[:2]
    impl = "uvloop" if args.uvloop else "asyncio"
    print(f"listening on {host}:{port} ({impl})", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            print("asyncio_echo: uvloop is not installed (Debian: apt-get install python3-uvloop)", file=sys.stderr)
            sys.exit(3)
        uvloop.install()
    asyncio.run(main(args))
    sys.exit(0)
