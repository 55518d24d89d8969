"""Checks a shoal server (`shoal serve --tools demo`) with the official Python MCP SDK 2.x.

Usage: python client.py http://127.0.0.1:PORT/mcp

With its default automatic era detection (`mode="auto"`: it probes `server/discover`) the client
must land on the stateless revision 2026-07-28, and with `mode="legacy"` on the session era,
against the same endpoint. In each era it lists the demo tools and calls `echo`, `count` (with
progress), `ask_user` (elicitation) and `ask_model` (sampling): real server-to-client requests in
the session era, `input_required` answered by the SDK's own multi round-trip driver in the
stateless one. On 2026-07-28 it also opens a `subscriptions/listen` stream, which is entered on
the server's acknowledgement. Exits non-zero on the first mismatch; `cargo xtask clients` runs it.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import anyio
import mcp_types as types
from mcp import Client

SDK = "python-sdk-2"
TIMEOUT_SECONDS = 60


class CheckError(Exception):
    """A check against the server's behaviour failed."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckError(message)


def text_of(result: types.CallToolResult, tool: str) -> str:
    check(not result.is_error, f"{tool}: isError: {result.model_dump_json()}")
    for block in result.content:
        if isinstance(block, types.TextContent):
            return block.text
    raise CheckError(f"{tool}: no text content: {result.model_dump_json()}")


class Recorder:
    """Answers the server's requests as the checks expect and records what arrived."""

    def __init__(self) -> None:
        self.elicitations: list[types.ElicitRequestParams] = []
        self.samplings: list[types.CreateMessageRequestParams] = []
        self.progress: list[float] = []

    async def on_elicit(self, _context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.elicitations.append(params)
        return types.ElicitResult(action="accept", content={"answer": "Ada"})

    async def on_sample(self, _context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.samplings.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hi there"),
            model="test-model",
        )

    async def on_progress(self, progress: float, _total: float | None, _message: str | None) -> None:
        self.progress.append(progress)


async def run(url: str, mode: str, expected_version: str) -> None:
    recorder = Recorder()
    async with Client(
        url,
        mode=mode,
        elicitation_callback=recorder.on_elicit,
        sampling_callback=recorder.on_sample,
        read_timeout_seconds=TIMEOUT_SECONDS,
    ) as client:
        version = client.protocol_version
        check(version == expected_version, f"{mode}: negotiated {version}, expected {expected_version}")
        tools = [tool.name for tool in (await client.list_tools()).tools]
        check("echo" in tools, f"{mode}: no echo in {tools}")
        echoed = text_of(await client.call_tool("echo", {"text": "hello"}), "echo")
        check(echoed == "hello", f"{mode}: echo answered {echoed!r}")
        counted = await client.call_tool(
            "count", {"to": 3, "interval_ms": 10}, progress_callback=recorder.on_progress
        )
        text_of(counted, "count")
        check(recorder.progress == [1, 2, 3], f"{mode}: progress {recorder.progress}")
        answer = text_of(await client.call_tool("ask_user", {"question": "What is your name?"}), "ask_user")
        check(len(recorder.elicitations) == 1, f"{mode}: {len(recorder.elicitations)} elicitations")
        check(
            recorder.elicitations[0].message == "What is your name?",
            f"{mode}: asked {recorder.elicitations[0]!r}",
        )
        check(answer == "Ada", f"{mode}: ask_user answered {answer!r}")
        reply = text_of(await client.call_tool("ask_model", {"prompt": "Say hi"}), "ask_model")
        check(len(recorder.samplings) == 1, f"{mode}: {len(recorder.samplings)} sampling requests")
        check(reply == "hi there", f"{mode}: ask_model answered {reply!r}")
        listened = ""
        if expected_version == "2026-07-28":
            async with client.listen(tools_list_changed=True) as subscription:
                check(
                    subscription.honored.tools_list_changed is True,
                    f"{mode}: listen honoured {subscription.honored!r}",
                )
            listened = ", listen acknowledged"
        print(
            f"[{SDK}] ok: {mode}: {version}, {len(tools)} tools, echo, count with progress, "
            f"ask_user (elicitation), ask_model (sampling){listened}",
            flush=True,
        )


async def main(url: str) -> None:
    with anyio.fail_after(TIMEOUT_SECONDS):
        await run(url, "auto", "2026-07-28")
        await run(url, "legacy", "2025-11-25")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        anyio.run(main, sys.argv[1])
    except CheckError as error:
        print(f"[{SDK}] FAILED: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        print(f"[{SDK}] FAILED with an exception:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
