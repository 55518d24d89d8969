// The TypeScript MCP SDK logs in to `shoal serve --auth oauth` with the authorization-code
// flow, a headless browser standing in for the user.
//
// Usage: node oauth-login.mjs SERVER_URL dcr|cimd [USER] [CERT_PEM KEY_PEM]
//
// The client is the SDK's `Client` over `StreamableHTTPClientTransport` with an in-memory
// `OAuthClientProvider` (client information, tokens, PKCE verifier, discovery state). Its
// redirect URI, http://127.0.0.1:<port>/callback, is never requested: the headless browser
// (`redirectToAuthorization`) walks from the authorization URL with `redirect: 'manual'` and a
// cookie jar per host, fills the upstream provider's login form (`login=<USER>`) and Shoal's
// consent form (`decision=approve`), and stops at the first redirect to the redirect URI,
// keeping `code` (and checking `state` and `iss`).
//
// Phase 1 (login): connect, refused with 401; the SDK discovers the metadata and gets a
// client_id, by dynamic registration (dcr) or as the URL of a Client ID Metadata Document
// (cimd: the document is served over https from this process with CERT_PEM/KEY_PEM, whose CA
// shoal must trust, and shoal must run with --client-metadata-private-targets); the browser
// walks; `transport.finishAuth(code)`; a new transport connects, lists the tools and calls
// `echo`. Then it prints {"phase":"logged-in",…} and waits for one line on stdin (xtask
// restarts a replica meanwhile; end of input goes on at once).
//
// Phase 2 (refresh): the provider's stored access token is replaced by a bogus one; a new
// transport is refused with 401 and the SDK uses the refresh token (no browser: it throws if
// asked), then lists the tools and calls `echo` again. The refresh token must have rotated.
//
// Every request goes through a recording fetch. Stdout: the phase line, then one JSON line of
// results; exit 0, or a `FAILED:` line on stderr and exit 1.

import fs from 'node:fs';
import https from 'node:https';
import readline from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const SDK = 'typescript-sdk';
/// The scope shoal requires (`--required-scopes`), which the SDK learns from the challenge.
const SCOPE = 'mcp:tools';
/// The whole run, phase 2's wait for stdin included.
const TIMEOUT_MS = 120_000;
/// The most requests one browser walk makes.
const MAX_STEPS = 20;
/// The redirect URI's port: nothing listens there, the walk stops before it.
const CALLBACK_PORT = 53682;
const REDIRECT_URL = `http://127.0.0.1:${CALLBACK_PORT}/callback`;
const CLIENT_METADATA = {
  client_name: 'Shoal TypeScript SDK check',
  redirect_uris: [REDIRECT_URL],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

class CheckError extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckError(message);
}

function log(message) {
  console.error(`[${SDK}] ${message}`);
}

// === a browser without a person ===

/// Cookies by host name (as a browser keeps them: the port does not separate them), each
/// with its path.
class CookieJar {
  #byHost = new Map();

  store(url, response) {
    const cookies = this.#byHost.get(url.hostname) ?? new Map();
    this.#byHost.set(url.hostname, cookies);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=');
        const lower = key.toLowerCase();
        if (lower === 'path' && val.startsWith('/')) path = val;
        if (lower === 'max-age' && Number(val) <= 0) expired = true;
        if (lower === 'expires' && Date.parse(val) < Date.now()) expired = true;
      }
      const key = `${name}\u0000${path}`;
      if (expired) cookies.delete(key);
      else cookies.set(key, { name, value, path });
    }
  }

  header(url) {
    const cookies = this.#byHost.get(url.hostname);
    if (!cookies) return undefined;
    const matching = [...cookies.values()].filter(
      (c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
    );
    // Longer paths first, as browsers send them.
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

function decodeEntities(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    found[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return found;
}

/// The first form of `html`, filled in: hidden and other inputs with their values, `login` with
/// the user, and of named submit buttons the one whose value is `decision`.
function readForm(html, user, decision) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form) throw new CheckError('an HTML page without a form');
  const formAttributes = attributes(form[1]);
  const fields = new URLSearchParams();
  const buttons = [];
  for (const m of form[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const a = attributes(m[2]);
    const type = (a.type ?? (m[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
    if (!a.name) continue;
    if (type === 'submit') buttons.push([a.name, a.value ?? '']);
    else if (['button', 'reset', 'image', 'file'].includes(type)) continue;
    else if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue;
    else if (a.name === 'login') fields.append('login', user);
    else fields.append(a.name, a.value ?? '');
  }
  if (buttons.length) {
    const button = buttons.find(([, value]) => value === decision);
    if (!button) throw new CheckError(`a form without a ${decision} button: ${JSON.stringify(buttons)}`);
    fields.append(button[0], button[1]);
  }
  return { method: (formAttributes.method ?? 'get').toLowerCase(), action: formAttributes.action, fields };
}

/// Walks from `start` to the first redirect to `stopAt`; returns that URL and the pages seen.
async function walk(start, stopAt, user, decision = 'approve') {
  const jar = new CookieJar();
  const visits = [];
  let url = new URL(start);
  let init = { method: 'GET' };
  while (visits.length < MAX_STEPS) {
    const headers = new Headers(init.headers ?? {});
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    visits.push(`${init.method} ${url.pathname} ${response.status}`);
    jar.store(url, response);
    const body = await response.text();
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400) {
      check(location, `${init.method} ${url}: a redirect without Location`);
      const next = new URL(location, url);
      if (next.href.startsWith(stopAt)) return { redirect: next, visits };
      // 307 and 308 repeat the request; the others become a GET.
      if (response.status !== 307 && response.status !== 308) init = { method: 'GET' };
      url = next;
      continue;
    }
    check(
      response.status === 200 && (response.headers.get('content-type') ?? '').startsWith('text/html'),
      `${init.method} ${url}: HTTP ${response.status} ${body.slice(0, 300)} (after ${visits.join(', ')})`,
    );
    const form = readForm(body, user, decision);
    const target = new URL(form.action || url.href, url);
    if (form.method === 'post') {
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.fields.toString(),
      };
    } else {
      target.search = form.fields.toString();
      init = { method: 'GET' };
    }
    url = target;
  }
  throw new CheckError(`no redirect to ${stopAt} after ${MAX_STEPS} requests: ${visits.join(', ')}`);
}

// === the provider ===

class InMemoryProvider {
  constructor({ user, clientMetadataUrl }) {
    this.user = user;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.expectedState = undefined;
    this.code = undefined;
    this.walks = [];
    this.browserAllowed = true;
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return CLIENT_METADATA;
  }

  state() {
    this.expectedState = crypto.randomUUID();
    return this.expectedState;
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(information) {
    this.client = information;
  }

  tokens() {
    return this.stored;
  }

  saveTokens(tokens) {
    this.stored = tokens;
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    check(this.verifier, 'the SDK asked for a code verifier before saving one');
    return this.verifier;
  }

  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }

  async redirectToAuthorization(authorizationUrl) {
    check(this.browserAllowed, `the SDK sent the user to log in again: ${authorizationUrl}`);
    const { redirect, visits } = await walk(authorizationUrl.href, REDIRECT_URL, this.user);
    this.walks.push({ authorization_url: authorizationUrl.href, visits });
    const params = redirect.searchParams;
    check(!params.has('error'), `the authorization failed: ${redirect.href}`);
    check(params.get('state') === this.expectedState, `state ${params.get('state')} is not ${this.expectedState}`);
    check(params.get('iss'), `no iss in the redirect (RFC 9207): ${redirect.href}`);
    this.iss = params.get('iss');
    this.code = params.get('code');
    check(this.code, `no code in the redirect: ${redirect.href}`);
  }
}

// === the client ===

function recordingFetch(log) {
  return async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const entry = { method: (init.method ?? 'GET').toUpperCase(), path: url.pathname };
    if (init.body instanceof URLSearchParams) entry.grant_type = init.body.get('grant_type') ?? undefined;
    log.push(entry);
    const response = await fetch(input, init);
    entry.status = response.status;
    return response;
  };
}

/// A connected client over a new transport: tools listed, `echo` called.
async function connectAndCall(url, provider, fetched, text) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    authProvider: provider,
    fetch: recordingFetch(fetched),
  });
  const client = new Client({ name: 'shoal-oauth-login', version: '0.1.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name);
  check(names.includes('echo'), `echo is not listed: ${names}`);
  const echo = await client.callTool({ name: 'echo', arguments: { text } });
  const echoed = echo.content?.find((block) => block.type === 'text')?.text;
  check(echoed === text, `echo answered ${JSON.stringify(echo)}`);
  await transport.terminateSession().catch(() => {});
  await client.close();
  return names;
}

/// Serves the client metadata document at https://127.0.0.1:<port>/oauth/client.json.
async function serveClientMetadata(certFile, keyFile) {
  const server = https.createServer(
    { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) },
    (request, response) => {
      server.requests += 1;
      if (request.url !== '/oauth/client.json') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ ...CLIENT_METADATA, client_id: server.url }));
    },
  );
  server.requests = 0;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.url = `https://127.0.0.1:${server.address().port}/oauth/client.json`;
  return server;
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/// One line of stdin, or end of input.
function nextLine() {
  return new Promise((resolve) => {
    const lines = readline.createInterface({ input: process.stdin });
    let done = false;
    const finish = (line) => {
      if (done) return;
      done = true;
      lines.close();
      resolve(line);
    };
    lines.once('line', finish);
    lines.once('close', () => finish(null));
  });
}

async function main() {
  const [url, mode, user = 'alice', certFile, keyFile] = process.argv.slice(2);
  if (!url || !['dcr', 'cimd'].includes(mode) || (mode === 'cimd' && (!certFile || !keyFile))) {
    console.error('usage: node oauth-login.mjs SERVER_URL dcr|cimd [USER] [CERT_PEM KEY_PEM]');
    process.exit(2);
  }
  const metadataServer = mode === 'cimd' ? await serveClientMetadata(certFile, keyFile) : undefined;
  const provider = new InMemoryProvider({ user, clientMetadataUrl: metadataServer?.url });
  const fetched = [];

  // Phase 1: refused, discovery, client id, the browser, the code exchange.
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    authProvider: provider,
    fetch: recordingFetch(fetched),
  });
  const first = new Client({ name: 'shoal-oauth-login', version: '0.1.0' });
  try {
    await first.connect(transport);
    throw new CheckError('the first connect succeeded without a login');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  check(provider.code, 'the SDK did not send the user to log in');
  await transport.finishAuth(provider.code);
  const clientId = provider.client?.client_id;
  const registrations = fetched.filter((f) => f.method === 'POST' && f.path === '/oauth/register');
  if (mode === 'dcr') {
    check(registrations.length === 1 && registrations[0].status === 201, `one registration: ${JSON.stringify(registrations)}`);
    check(clientId && clientId !== metadataServer?.url, `no registered client_id: ${clientId}`);
  } else {
    check(registrations.length === 0, `a CIMD client registered: ${JSON.stringify(registrations)}`);
    check(clientId === metadataServer.url, `the client_id ${clientId} is not the document's URL`);
    check(metadataServer.requests > 0, 'shoal never fetched the client metadata document');
  }
  const loginTokens = provider.tokens();
  check(loginTokens?.access_token && loginTokens?.refresh_token, `tokens without a refresh token: ${Object.keys(loginTokens ?? {})}`);
  const accessClaims = claims(loginTokens.access_token);
  check(accessClaims.sub === user, `the token's sub is ${accessClaims.sub}, not ${user}`);
  check(accessClaims.client_id === clientId, `the token's client_id is ${accessClaims.client_id}`);
  check((accessClaims.scope ?? '').split(' ').includes(SCOPE), `the token's scope ${accessClaims.scope} lacks ${SCOPE}`);
  const tools = await connectAndCall(url, provider, fetched, `hello from ${SDK} (${mode})`);
  log(`ok: logged in as ${user} with ${mode} client ${clientId}, listed ${tools.length} tools, echo answered`);
  console.log(JSON.stringify({ phase: 'logged-in', sdk: SDK, mode, client_id: clientId }));

  // Between the phases xtask restarts a replica.
  await nextLine();

  // Phase 2: the access token is gone bad; the refresh token must do, without a browser.
  provider.browserAllowed = false;
  provider.saveTokens({ ...loginTokens, access_token: 'invalidated-by-the-test' });
  const beforeRefresh = fetched.length;
  await connectAndCall(url, provider, fetched, `hello again from ${SDK} (${mode})`);
  const refreshes = fetched
    .slice(beforeRefresh)
    .filter((f) => f.path === '/oauth/token' && f.grant_type === 'refresh_token');
  check(refreshes.length === 1 && refreshes[0].status === 200, `one refresh: ${JSON.stringify(refreshes)}`);
  const refreshed = provider.tokens();
  check(refreshed.access_token !== 'invalidated-by-the-test', 'the access token was not replaced');
  check(refreshed.refresh_token && refreshed.refresh_token !== loginTokens.refresh_token, 'the refresh token did not rotate');
  log('ok: refreshed after the restart, listed the tools, echo answered');

  metadataServer?.close();
  console.log(JSON.stringify({
    sdk: SDK,
    mode,
    ok: true,
    user,
    client_id: clientId,
    iss: provider.iss,
    token_claims: { iss: accessClaims.iss, aud: accessClaims.aud, sub: accessClaims.sub, scope: accessClaims.scope ?? null },
    tools,
    browser_steps: provider.walks.map((w) => w.visits),
    metadata_document_fetches: metadataServer?.requests ?? null,
    refresh: { status: refreshes[0].status, rotated: true },
    requests: fetched.map((f) => `${f.method} ${f.path}${f.grant_type ? ` (${f.grant_type})` : ''} ${f.status}`),
  }));
}

const timer = setTimeout(() => {
  console.error(`FAILED: [${SDK}] did not finish within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
timer.unref();

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`FAILED: [${SDK}] ${error instanceof CheckError ? error.message : (error?.stack ?? error)}`);
    process.exit(1);
  },
);
