"""The fake's transports: HTTP on loopback (what PTB talks to normally) and in-process (fast tests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot.telegram.fake_api.checks import ApiError, DropConnection

if TYPE_CHECKING:
    from bot.telegram.fake_api.server import FakeBotAPI


class HttpMixin:
    """FakeBotAPI's HTTP server; its state is set up in FakeBotAPI.__init__."""

    # --- HTTP ------------------------------------------------------------------------------------------------
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self._connections.add(writer)
        try:
            while not self._closing:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                verb, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                try:
                    if headers.get("transfer-encoding", "").lower() == "chunked":
                        body = await _read_chunked(reader)
                    else:
                        body = await reader.readexactly(int(headers.get("content-length") or 0))
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return  # the client gave up on this request (e.g. a cancelled call)
                try:
                    status, payload = await self._dispatch(verb, target, headers, body)
                except DropConnection:
                    writer.transport.abort()
                    return
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                          409: "Conflict", 429: "Too Many Requests"}.get(status, "Error")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n".encode("latin-1") + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(writer)
            if task is not None:
                self._conn_tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, verb: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        parts = urlsplit(target)
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", parts.path)
        if not match:
            return 404, ApiError(404, "Not Found").payload()
        if match.group(1) != self.token:
            return 401, ApiError(401, "Unauthorized").payload()
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        content_type = headers.get("content-type", "")
        if body:
            if content_type.startswith("application/json"):
                params.update(json.loads(body.decode("utf-8")))
            elif content_type.startswith("multipart/form-data"):
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name and not part.get_filename():
                        params[name] = part.get_payload(decode=True).decode("utf-8")
                    elif name:  # an uploaded file
                        params[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True)}
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return await self.call(match.group(2), params)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


class InProcessRequest(BaseRequest):
    """PTB transport straight into a FakeBotAPI: same checks, no sockets."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=None, write_timeout=None, connect_timeout=None,
                         pool_timeout=None) -> tuple[int, bytes]:
        api_method = url.rstrip("/").rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.json_parameters) if request_data else {}
        for name, (filename, content, _mime) in (request_data.multipart_data if request_data else {}).items():
            params[name] = {"filename": filename, "content": content if isinstance(content, bytes) else content.read()}
        try:
            status, payload = await self.api.call(api_method, params)
        except DropConnection as exc:
            raise NetworkError("fake: connection dropped") from exc
        return status, json.dumps(payload).encode("utf-8")
