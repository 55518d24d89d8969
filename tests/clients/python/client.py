"""Checks a shoal server (`shoal serve --tools demo`) with the official Python MCP SDK.

Usage: python client.py http://127.0.0.1:PORT/mcp

Connects over Streamable HTTP, declares the elicitation and sampling capabilities, and
exercises the demo tools `echo`, `count`, `ask_user` and `ask_model`. Exits non-zero with a
message on the first mismatch; `cargo xtask clients` runs it.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.context import RequestContext

SDK = "python-sdk"
REQUIRED_TOOLS = ("echo", "count", "ask_user", "ask_model")
TIMEOUT_SECONDS = 60


class CheckError(Exception):
    """A check against the server's behaviour failed."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckError(message)


def passed(what: str) -> None:
    print(f"[{SDK}] ok: {what}", flush=True)


def result_text(result: types.CallToolResult, tool: str) -> str:
    """The text of a tool result's text content block."""
    check(not result.isError, f"{tool}: result has isError set: {result.model_dump_json()}")
    for block in result.content:
        if isinstance(block, types.TextContent):
            return block.text
    raise CheckError(f"{tool}: result has no text content: {result.model_dump_json()}")


class Recorder:
    """Answers the server's requests as the checks expect and records what arrived."""

    def __init__(self) -> None:
        self.elicitations: list[Any] = []
        self.samplings: list[types.CreateMessageRequestParams] = []
        self.progress: list[float] = []

    async def on_elicit(
        self, context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.elicitations.append(params)
        return types.ElicitResult(action="accept", content={"answer": "Ada"})

    async def on_sample(
        self,
        context: RequestContext[ClientSession, Any],
        params: types.CreateMessageRequestParams,
    ) -> types.CreateMessageResult:
        self.samplings.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hi there"),
            model="test-model",
        )

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)


async def run_checks(session: ClientSession, seen: Recorder) -> None:
    # tools/list
    listed = await session.list_tools()
    names = [tool.name for tool in listed.tools]
    for name in REQUIRED_TOOLS:
        check(name in names, f"tools/list: missing tool {name}; got {names}")
    passed(f"tools/list has {', '.join(REQUIRED_TOOLS)}")

    # echo
    greeting = f"hello from {SDK}"
    echoed = result_text(await session.call_tool("echo", {"text": greeting}), "echo")
    check(echoed == greeting, f"echo: expected {greeting!r}, got {echoed!r}")
    passed("echo")

    # count, with progress
    counted = result_text(
        await session.call_tool(
            "count", {"to": 3, "interval_ms": 10}, progress_callback=seen.on_progress
        ),
        "count",
    )
    check(counted == "3", f"count: expected '3', got {counted!r}")
    check(
        len(seen.progress) == 3,
        f"count: expected 3 progress notifications, got {len(seen.progress)}: {seen.progress}",
    )
    check(
        all(a < b for a, b in zip(seen.progress, seen.progress[1:])),
        f"count: progress not increasing: {seen.progress}",
    )
    passed("count with 3 progress notifications")

    # ask_user, answered through elicitation
    answer = result_text(
        await session.call_tool("ask_user", {"question": "What is your name?"}), "ask_user"
    )
    check(
        len(seen.elicitations) == 1,
        f"ask_user: expected 1 elicitation request, got {len(seen.elicitations)}",
    )
    message = seen.elicitations[0].message
    check(message == "What is your name?", f"ask_user: elicitation message was {message!r}")
    check(answer == "Ada", f"ask_user: expected 'Ada', got {answer!r}")
    passed("ask_user via elicitation/create")

    # ask_model, answered through sampling
    reply = result_text(await session.call_tool("ask_model", {"prompt": "Say hi"}), "ask_model")
    check(
        len(seen.samplings) == 1,
        f"ask_model: expected 1 sampling request, got {len(seen.samplings)}",
    )
    messages = seen.samplings[0].messages
    first = messages[0].content if messages else None
    first_text = first.text if isinstance(first, types.TextContent) else None
    check(first_text == "Say hi", f"ask_model: first sampling message text was {first_text!r}")
    check(reply == "hi there", f"ask_model: expected 'hi there', got {reply!r}")
    passed("ask_model via sampling/createMessage")


async def run(url: str) -> None:
    seen = Recorder()
    with anyio.fail_after(TIMEOUT_SECONDS):
        async with streamable_http_client(url) as (read, write, get_session_id):
            async with ClientSession(
                read,
                write,
                client_info=types.Implementation(
                    name="shoal-client-check-python", version="0.1.0"
                ),
                elicitation_callback=seen.on_elicit,
                sampling_callback=seen.on_sample,
            ) as session:
                await session.initialize()
                passed(f"initialized session {get_session_id()}")
                await run_checks(session, seen)
        # Leaving streamable_http_client terminates the session with DELETE.
        passed("session closed (DELETE)")


def find_check_error(error: BaseException) -> CheckError | None:
    """The CheckError inside `error`, which anyio may have wrapped in exception groups."""
    if isinstance(error, CheckError):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = find_check_error(inner)
        if found is not None:
            return found
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python client.py SERVER_URL", file=sys.stderr)
        return 2
    try:
        anyio.run(run, sys.argv[1])
    except Exception as error:  # noqa: BLE001 - report every failure the same way
        check_error = find_check_error(error)
        if check_error is not None:
            print(f"[{SDK}] FAILED: {check_error}", file=sys.stderr)
        else:
            traceback.print_exception(error)
            print(f"[{SDK}] FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"[{SDK}] all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
