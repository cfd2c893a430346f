"""A small closed-loop HTTP/1.1 load generator on asyncio streams (no third-party client).

Each of ``clients`` keep-alive connections sends ``POST path`` with ``body``, waits for the
whole response, and sends again until ``seconds`` have passed. Every response is recorded with
its status, latency (from the first byte written to the last byte read) and whether it had a
``Retry-After`` header. A connection the server closes is reopened. One client process, one
event loop: light enough that the server, not the client, is the bottleneck of a 2-core box.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    retry_after: list[bool] = field(default_factory=list)
    errors: int = 0

    def accepted(self) -> list[float]:
        return [t for s, t in zip(self.statuses, self.latencies, strict=True) if s == 200]

    def count(self, status: int) -> int:
        return self.statuses.count(status)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, headers.get("connection", "").lower() == "close"


async def _client(port: int, request: bytes, end: float, out: Load) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < end:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            start = time.perf_counter()
            writer.write(request)
            status, headers, close = await _read_response(reader)
            out.latencies.append(time.perf_counter() - start)
            out.statuses.append(status)
            out.retry_after.append("retry-after" in headers)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            out.errors += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


def hammer(port: int, body: bytes, *, clients: int, seconds: float, path: str = "/predict") -> Load:
    """Run ``clients`` closed-loop connections for ``seconds``; returns what they saw."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out = Load()

    async def main() -> None:
        end = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, request, end, out) for _ in range(clients)))

    asyncio.run(main())
    return out
