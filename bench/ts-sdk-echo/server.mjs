// bench-ts-sdk-echo: the official TypeScript MCP SDK's anchor of `cargo xtask bench`.
//
// One `echo {text}` tool on the SDK's McpServer, served by its StreamableHTTPServerTransport in
// stateful mode: one transport and one McpServer per session, kept in a map keyed by
// Mcp-Session-Id, as in the SDK's own example. Plain node:http, TCP_NODELAY on every socket.
//
//   node server.mjs 127.0.0.1:8003      (or PORT=8003 node server.mjs)

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';

const [host, port] = listenAddress(process.argv[2] ?? process.env.PORT ?? '8003');

/** Transports of the open sessions, by session id. */
const transports = new Map();

function newSession() {
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (sessionId) => transports.set(sessionId, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  const server = new McpServer({ name: 'bench-ts-sdk-echo', version: '0.1.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its text.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return { server, transport };
}

async function handle(req, res) {
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
    return reply(res, 404, 'not found');
  }
  const sessionId = req.headers['mcp-session-id'];
  if (req.method === 'POST') {
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return rpcError(res, 400, -32700, 'Parse error');
    }
    const existing = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(req, res, body);
    if (sessionId === undefined && isInitializeRequest(body)) {
      const { server, transport } = newSession();
      await server.connect(transport);
      return transport.handleRequest(req, res, body);
    }
    if (sessionId !== undefined) return rpcError(res, 404, -32001, 'Session not found');
    return rpcError(res, 400, -32000, 'Bad Request: no valid session id');
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    const transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport) return rpcError(res, sessionId ? 404 : 400, -32000, 'Invalid or missing session id');
    return transport.handleRequest(req, res);
  }
  res.setHeader('Allow', 'GET, POST, DELETE');
  return reply(res, 405, 'method not allowed');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
}

function rpcError(res, status, code, message) {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

/** `HOST:PORT` or `PORT` (on 127.0.0.1). */
function listenAddress(text) {
  const at = text.lastIndexOf(':');
  const [h, p] = at < 0 ? ['127.0.0.1', text] : [text.slice(0, at), text.slice(at + 1)];
  const number = Number(p);
  if (!Number.isInteger(number) || number <= 0 || number > 65535) {
    console.error(`bench-ts-sdk-echo: not a port: ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return [h, number];
}

const httpServer = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error('bench-ts-sdk-echo: request failed:', error);
    if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error');
    else res.end();
  });
});
// Small replies written in several chunks stall on delayed ACKs without it.
httpServer.on('connection', (socket) => socket.setNoDelay(true));
httpServer.keepAliveTimeout = 60_000;
httpServer.listen(port, host, () => {
  console.error(`bench-ts-sdk-echo listening on http://${host}:${port}/mcp`);
});
process.on('SIGTERM', () => process.exit(0));
