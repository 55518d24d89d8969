// The TypeScript SDK 2.x client against shoal (`node client.mjs <url>`): with automatic era
// detection (it probes `server/discover`) it must land on the stateless revision 2026-07-28,
// and by default on the session era, against the same endpoint. In each era it lists the demo
// tools, calls `echo`, `count` with progress, `ask_user` (elicitation) and `ask_model`
// (sampling): real server→client requests in the session era, `input_required` answered by the
// SDK's own multi round-trip driver in the stateless one. On 2026-07-28 it also opens a
// `subscriptions/listen` stream, which resolves on the server's acknowledgement. Exits non-zero
// on the first failure.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const url = new URL(process.argv[2] ?? "http://127.0.0.1:8080/mcp");

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

function text(result, label) {
  check(!result.isError, `${label}: ${JSON.stringify(result)}`);
  return result.content?.[0]?.text;
}

async function run(label, options, expectedVersion) {
  const client = new Client(
    { name: `shoal-ts2-${label}`, version: "1.0.0" },
    { ...options, capabilities: { elicitation: {}, sampling: {} } },
  );
  const elicitations = [];
  client.setRequestHandler("elicitation/create", async (request) => {
    elicitations.push(request.params);
    return { action: "accept", content: { answer: "Ada" } };
  });
  const samplings = [];
  client.setRequestHandler("sampling/createMessage", async (request) => {
    samplings.push(request.params);
    return { role: "assistant", content: { type: "text", text: "hi there" }, model: "test-model" };
  });
  await client.connect(new StreamableHTTPClientTransport(url));
  try {
    const version = client.getNegotiatedProtocolVersion();
    check(version === expectedVersion, `${label}: negotiated ${version}, expected ${expectedVersion}`);
    const { tools } = await client.listTools();
    check(tools.some((tool) => tool.name === "echo"), `${label}: no echo in ${JSON.stringify(tools)}`);
    const echoed = await client.callTool({ name: "echo", arguments: { text: "hello" } });
    check(text(echoed, `${label} echo`) === "hello", `${label}: echo answered ${JSON.stringify(echoed)}`);
    const progress = [];
    const counted = await client.callTool(
      { name: "count", arguments: { to: 3, interval_ms: 10 } },
      { onprogress: (update) => progress.push(update.progress) },
    );
    check(progress.length === 3, `${label}: progress ${JSON.stringify(progress)}`);
    check(!counted.isError, `${label}: count failed: ${JSON.stringify(counted)}`);

    const answer = text(
      await client.callTool({ name: "ask_user", arguments: { question: "What is your name?" } }),
      `${label} ask_user`,
    );
    check(elicitations.length === 1, `${label}: ${elicitations.length} elicitations`);
    check(elicitations[0].message === "What is your name?", `${label}: asked ${JSON.stringify(elicitations[0])}`);
    check(answer === "Ada", `${label}: ask_user answered ${JSON.stringify(answer)}`);
    const reply = text(await client.callTool({ name: "ask_model", arguments: { prompt: "Say hi" } }), `${label} ask_model`);
    check(samplings.length === 1, `${label}: ${samplings.length} sampling requests`);
    check(reply === "hi there", `${label}: ask_model answered ${JSON.stringify(reply)}`);

    let listened = "";
    if (expectedVersion === "2026-07-28") {
      const subscription = await client.listen({ toolsListChanged: true });
      await subscription.close();
      listened = ", listen acknowledged";
    }
    console.log(
      `${label}: ${version}, ${tools.length} tools, echo ok, count ok with progress ${progress.join(",")}, ` +
        `ask_user ok (elicitation), ask_model ok (sampling)${listened}`,
    );
  } finally {
    await client.close();
  }
}

await run("auto", { versionNegotiation: { mode: "auto" } }, "2026-07-28");
await run("default", {}, "2025-11-25");
