// bench-ts2-sdk-echo: the official TypeScript MCP SDK 2.x anchor of `cargo xtask bench`.
//
// One `echo {text}` tool on the SDK's McpServer, served by its createMcpHandler entry, which
// takes both eras on one endpoint: 2026-07-28 requests (per-request envelope, no session) and
// 2025-era requests through its default stateless legacy fallback (a fresh instance per request,
// no Mcp-Session-Id). The handler is mounted on plain node:http with toNodeHandler, the SDK's
// own Node adapter; TCP_NODELAY on every socket.
//
//   node server.mjs 127.0.0.1:8004      (or PORT=8004 node server.mjs)

import { createServer } from 'node:http';

import { toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import * as z from 'zod';

const [host, port] = listenAddress(process.argv[2] ?? process.env.PORT ?? '8004');

// The SDK calls the factory once per request (either era): the tools are defined once here.
function newServer() {
  const server = new McpServer({ name: 'bench-ts2-sdk-echo', version: '0.1.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its text.', inputSchema: z.object({ text: z.string() }) },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

const mcp = createMcpHandler(newServer, {
  onerror: (error) => console.error('bench-ts2-sdk-echo:', error.message),
});
const handle = toNodeHandler(mcp);

function reply(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
}

/** `HOST:PORT` or `PORT` (on 127.0.0.1). */
function listenAddress(text) {
  const at = text.lastIndexOf(':');
  const [h, p] = at < 0 ? ['127.0.0.1', text] : [text.slice(0, at), text.slice(at + 1)];
  const number = Number(p);
  if (!Number.isInteger(number) || number <= 0 || number > 65535) {
    console.error(`bench-ts2-sdk-echo: not a port: ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return [h, number];
}

const httpServer = createServer((req, res) => {
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
    return reply(res, 404, 'not found');
  }
  handle(req, res).catch((error) => {
    console.error('bench-ts2-sdk-echo: request failed:', error);
    if (!res.headersSent) reply(res, 500, 'internal error');
    else res.end();
  });
});
// Small replies written in several chunks stall on delayed ACKs without it.
httpServer.on('connection', (socket) => socket.setNoDelay(true));
httpServer.keepAliveTimeout = 60_000;
httpServer.listen(port, host, () => {
  console.error(`bench-ts2-sdk-echo listening on http://${host}:${port}/mcp`);
});
process.on('SIGTERM', () => process.exit(0));
