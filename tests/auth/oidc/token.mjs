// Gets one access token from the fixture in server.mjs (or any OAuth 2.0 authorization server)
// by the client-credentials grant, and prints only the access token on stdout, for
// `cargo xtask conformance --auth`:
//
//   node token.mjs --token-endpoint URL [--resource URL] [--scope "a b"]
//
// The client is `SHOAL_OIDC_CLIENT` (ID:SECRET) from the environment, default the fixture's
// shoal-test:shoal-test-secret; it authenticates with client_secret_basic. `resource` is the
// RFC 8707 resource indicator (the Shoal endpoint, the token's `aud`). On any failure it exits
// non-zero with the status and the error fields on stderr, never a token.

import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    'token-endpoint': { type: 'string' },
    resource: { type: 'string' },
    scope: { type: 'string' },
  },
  allowPositionals: false,
});

function fail(message) {
  process.stderr.write(`token.mjs: ${message}\n`);
  process.exit(1);
}

const endpoint = args['token-endpoint'];
if (!endpoint) fail('--token-endpoint is required');
const client = process.env.SHOAL_OIDC_CLIENT || 'shoal-test:shoal-test-secret';
const at = client.indexOf(':');
if (at <= 0) fail('SHOAL_OIDC_CLIENT is not ID:SECRET');

const form = new URLSearchParams({ grant_type: 'client_credentials' });
if (args.scope) form.set('scope', args.scope);
if (args.resource) form.set('resource', args.resource);
// RFC 6749 §2.3.1: the id and secret are form-urlencoded before the Basic encoding.
const basic = Buffer.from(
  `${encodeURIComponent(client.slice(0, at))}:${encodeURIComponent(client.slice(at + 1))}`,
).toString('base64');

let response;
try {
  response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: form,
    signal: AbortSignal.timeout(10_000),
  });
} catch (error) {
  fail(`POST ${endpoint}: ${error?.message ?? error}`);
}
let body;
try {
  body = await response.json();
} catch {
  fail(`POST ${endpoint}: HTTP ${response.status}, not JSON`);
}
if (!response.ok || typeof body.access_token !== 'string') {
  const { error, error_description: description } = body ?? {};
  fail(`POST ${endpoint}: HTTP ${response.status} ${error ?? 'no access_token'}${description ? `: ${description}` : ''}`);
}
process.stdout.write(`${body.access_token}\n`);
