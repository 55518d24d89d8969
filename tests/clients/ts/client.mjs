// Checks a shoal server (`shoal serve --tools demo`) with the official TypeScript MCP SDK.
//
// Usage: node client.mjs http://127.0.0.1:PORT/mcp
//
// Connects over Streamable HTTP, declares the elicitation and sampling capabilities, and
// exercises the demo tools `echo`, `count`, `ask_user` and `ask_model`. Exits non-zero with a
// message on the first mismatch; `cargo xtask clients` runs it.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

const SDK = 'ts-sdk';
const REQUIRED_TOOLS = ['echo', 'count', 'ask_user', 'ask_model'];
const TIMEOUT_MS = 60_000;

class CheckError extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckError(message);
}

function passed(what) {
  console.log(`[${SDK}] ok: ${what}`);
}

/** The text of a tool result's single text content block. */
function resultText(result, tool) {
  check(!result.isError, `${tool}: result has isError set: ${JSON.stringify(result)}`);
  const text = result.content?.find((block) => block.type === 'text');
  check(text !== undefined, `${tool}: result has no text content: ${JSON.stringify(result)}`);
  return text.text;
}

async function main() {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node client.mjs SERVER_URL');
    process.exit(2);
  }

  const client = new Client(
    { name: 'shoal-client-check-ts', version: '0.1.0' },
    { capabilities: { elicitation: {}, sampling: {} } },
  );

  const elicitations = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    elicitations.push(request.params);
    return { action: 'accept', content: { answer: 'Ada' } };
  });

  const samplings = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    samplings.push(request.params);
    return {
      role: 'assistant',
      content: { type: 'text', text: 'hi there' },
      model: 'test-model',
    };
  });

  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  passed(`initialized session ${transport.sessionId ?? '(none)'}`);

  try {
    // tools/list
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    for (const name of REQUIRED_TOOLS) {
      check(names.includes(name), `tools/list: missing tool ${name}; got ${JSON.stringify(names)}`);
    }
    passed(`tools/list has ${REQUIRED_TOOLS.join(', ')}`);

    // echo
    const greeting = `hello from ${SDK}`;
    const echoed = resultText(
      await client.callTool({ name: 'echo', arguments: { text: greeting } }),
      'echo',
    );
    check(echoed === greeting, `echo: expected ${JSON.stringify(greeting)}, got ${JSON.stringify(echoed)}`);
    passed('echo');

    // count, with progress
    const progress = [];
    const counted = resultText(
      await client.callTool({ name: 'count', arguments: { to: 3, interval_ms: 10 } }, undefined, {
        onprogress: (notification) => progress.push(notification),
      }),
      'count',
    );
    check(counted === '3', `count: expected "3", got ${JSON.stringify(counted)}`);
    check(
      progress.length === 3,
      `count: expected 3 progress notifications, got ${progress.length}: ${JSON.stringify(progress)}`,
    );
    const values = progress.map((notification) => notification.progress);
    check(
      values.every((value, i) => i === 0 || value > values[i - 1]),
      `count: progress not increasing: ${JSON.stringify(values)}`,
    );
    passed('count with 3 progress notifications');

    // ask_user, answered through elicitation
    const answer = resultText(
      await client.callTool({ name: 'ask_user', arguments: { question: 'What is your name?' } }),
      'ask_user',
    );
    check(elicitations.length === 1, `ask_user: expected 1 elicitation request, got ${elicitations.length}`);
    check(
      elicitations[0].message === 'What is your name?',
      `ask_user: elicitation message was ${JSON.stringify(elicitations[0].message)}`,
    );
    check(answer === 'Ada', `ask_user: expected "Ada", got ${JSON.stringify(answer)}`);
    passed('ask_user via elicitation/create');

    // ask_model, answered through sampling
    const reply = resultText(
      await client.callTool({ name: 'ask_model', arguments: { prompt: 'Say hi' } }),
      'ask_model',
    );
    check(samplings.length === 1, `ask_model: expected 1 sampling request, got ${samplings.length}`);
    const firstText = samplings[0].messages?.[0]?.content?.text;
    check(firstText === 'Say hi', `ask_model: first sampling message text was ${JSON.stringify(firstText)}`);
    check(reply === 'hi there', `ask_model: expected "hi there", got ${JSON.stringify(reply)}`);
    passed('ask_model via sampling/createMessage');

    await transport.terminateSession();
    passed('session terminated (DELETE)');
  } finally {
    if (transport.sessionId !== undefined) {
      // A check failed before the DELETE: still end the session, best effort.
      await transport.terminateSession().catch(() => {});
    }
    await client.close();
  }
  console.log(`[${SDK}] all checks passed`);
}

setTimeout(() => {
  console.error(`[${SDK}] FAILED: no result within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS).unref();

main().catch((error) => {
  const detail = error instanceof CheckError ? error.message : (error?.stack ?? String(error));
  console.error(`[${SDK}] FAILED: ${detail}`);
  process.exit(1);
});
