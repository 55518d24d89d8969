// The TypeScript MCP SDK's own OAuth discovery against a shoal server in `--auth jwt` mode.
//
// Usage: node oauth-discovery.mjs SERVER_URL CLIENT_ID CLIENT_SECRET [SCOPE]
//
// 1. Step by step, with the SDK's discovery functions: an unauthenticated `initialize` gets a
//    401 whose WWW-Authenticate is parsed (`extractWWWAuthenticateParams`), the Protected
//    Resource Metadata it names is fetched (`discoverOAuthProtectedResourceMetadata`), and the
//    authorization server's metadata after it (`discoverAuthorizationServerMetadata`).
// 2. The whole flow, as an application uses it: a `Client` over `StreamableHTTPClientTransport`
//    with the SDK's `ClientCredentialsProvider` connects, is refused, discovers, gets a token
//    (client_credentials, `resource` from the metadata), retries, lists the tools and calls
//    `echo`. SDK 1.x asks for the provider's configured `scope` (SCOPE) in a client-credentials
//    request, not the challenge's `scope` hint. No `expectedIssuer` is given: finding the
//    authorization server is what is checked (the SDK warns about that on stderr).
//
// Every HTTP request both make goes through a recording fetch; the script prints one JSON
// object on stdout (what the SDK parsed and fetched) and exits 0, or prints the error and exits
// 1. The Rust test in crates/shoal-server/tests/auth.rs runs it and asserts on the JSON.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

const TIMEOUT_MS = 30_000;

function recordingFetch(log, phase) {
  return async (input, init = {}) => {
    const url = typeof input === 'string' ? input : (input.url ?? String(input));
    const method = (init.method ?? input.method ?? 'GET').toUpperCase();
    const entry = { phase, method, url };
    if (init.body instanceof URLSearchParams) {
      entry.form = Object.fromEntries(init.body.entries());
      // Never print the secret itself.
      delete entry.form.client_secret;
    }
    const headers = new Headers(init.headers ?? {});
    entry.authorization = headers.has('authorization')
      ? headers.get('authorization').split(' ')[0]
      : null;
    log.push(entry);
    const response = await fetch(input, init);
    entry.status = response.status;
    entry.www_authenticate = response.headers.get('www-authenticate');
    return response;
  };
}

async function main() {
  const [serverUrl, clientId, clientSecret, scope] = process.argv.slice(2);
  if (!serverUrl || !clientId || !clientSecret) {
    console.error('usage: node oauth-discovery.mjs SERVER_URL CLIENT_ID CLIENT_SECRET [SCOPE]');
    process.exit(2);
  }
  const fetched = [];

  // 1. Step by step.
  const stepFetch = recordingFetch(fetched, 'discovery');
  const refused = await stepFetch(serverUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'shoal-oauth-discovery', version: '0.1.0' },
      },
    }),
  });
  await refused.body?.cancel();
  const challenge = extractWWWAuthenticateParams(refused);
  const resourceMetadata = await discoverOAuthProtectedResourceMetadata(
    serverUrl,
    { resourceMetadataUrl: challenge.resourceMetadataUrl },
    stepFetch,
  );
  const authorizationServer = resourceMetadata.authorization_servers?.[0];
  if (!authorizationServer) throw new Error('the resource metadata names no authorization server');
  const authorizationServerMetadata = await discoverAuthorizationServerMetadata(
    authorizationServer,
    { fetchFn: stepFetch },
  );
  if (!authorizationServerMetadata) {
    throw new Error(`no metadata found for the authorization server ${authorizationServer}`);
  }

  // 2. The whole flow.
  const provider = new ClientCredentialsProvider({ clientId, clientSecret, scope });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), {
    authProvider: provider,
    fetch: recordingFetch(fetched, 'client'),
  });
  const client = new Client({ name: 'shoal-oauth-discovery', version: '0.1.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello, oauth' } });
  await transport.terminateSession().catch(() => {});
  await client.close();

  const token = provider.tokens()?.access_token;
  const claims = token
    ? JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
    : null;

  console.log(JSON.stringify({
    challenge: {
      status: refused.status,
      www_authenticate: refused.headers.get('www-authenticate'),
      resource_metadata_url: challenge.resourceMetadataUrl?.href ?? null,
      scope: challenge.scope ?? null,
      error: challenge.error ?? null,
    },
    resource_metadata: resourceMetadata,
    authorization_server: authorizationServer,
    authorization_server_metadata: {
      issuer: authorizationServerMetadata.issuer,
      token_endpoint: authorizationServerMetadata.token_endpoint,
      jwks_uri: authorizationServerMetadata.jwks_uri,
    },
    token_claims: claims && {
      iss: claims.iss,
      aud: claims.aud,
      sub: claims.sub,
      scope: claims.scope ?? null,
    },
    tools: tools.map((tool) => tool.name),
    echo: echo.content?.find((block) => block.type === 'text')?.text ?? null,
    fetched,
  }));
}

const timer = setTimeout(() => {
  console.error(`oauth-discovery: did not finish within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
timer.unref();

main().then(
  () => process.exit(0),
  (error) => {
    console.error('oauth-discovery failed:', error?.stack ?? error);
    process.exit(1);
  },
);
