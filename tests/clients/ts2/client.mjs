// The TypeScript SDK 2.x client against shoal (`node client.mjs <url>`): with automatic era
// detection (it probes `server/discover`) it must land on the stateless revision 2026-07-28,
// and by default on the session era, against the same endpoint. In each era it lists the demo
// tools, calls `echo`, and `count` with progress. Exits non-zero on the first failure.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const url = new URL(process.argv[2] ?? "http://127.0.0.1:8080/mcp");

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function run(label, options, expectedVersion) {
  const client = new Client({ name: `shoal-ts2-${label}`, version: "1.0.0" }, options);
  await client.connect(new StreamableHTTPClientTransport(url));
  try {
    const version = client.getNegotiatedProtocolVersion();
    check(version === expectedVersion, `${label}: negotiated ${version}, expected ${expectedVersion}`);
    const { tools } = await client.listTools();
    check(tools.some((tool) => tool.name === "echo"), `${label}: no echo in ${JSON.stringify(tools)}`);
    const echoed = await client.callTool({ name: "echo", arguments: { text: "hello" } });
    check(echoed.content?.[0]?.text === "hello", `${label}: echo answered ${JSON.stringify(echoed)}`);
    const progress = [];
    const counted = await client.callTool(
      { name: "count", arguments: { to: 3, interval_ms: 10 } },
      { onprogress: (update) => progress.push(update.progress) },
    );
    check(progress.length === 3, `${label}: progress ${JSON.stringify(progress)}`);
    check(!counted.isError, `${label}: count failed: ${JSON.stringify(counted)}`);
    console.log(`${label}: ${version}, ${tools.length} tools, echo ok, count ok with progress ${progress.join(",")}`);
  } finally {
    await client.close();
  }
}

await run("auto", { versionNegotiation: { mode: "auto" } }, "2026-07-28");
await run("default", {}, "2025-11-25");
