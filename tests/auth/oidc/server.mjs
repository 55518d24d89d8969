// A real OAuth 2.0 authorization server for Shoal's auth tests: oidc-provider (a certified
// OpenID provider) issuing RFC 9068 JWT access tokens by the client-credentials grant, with
// resource indicators (RFC 8707) naming the Shoal endpoint as the audience.
//
//   node server.mjs [--port N] [--resource URL] [--scopes "a b c"] [--client ID:SECRET]...
//                   [--ttl SECONDS]
//
// Defaults: port 0 (any free one), resource http://127.0.0.1:8080/mcp, scopes
// "mcp:tools mcp:echo mcp:admin", clients shoal-test:shoal-test-secret and
// shoal-other:shoal-other-secret, token lifetime 300 s. `SHOAL_OIDC_CLIENTS` (ID:SECRET,...)
// replaces the default clients when no --client is given.
//
// It listens on 127.0.0.1 only, issuer http://127.0.0.1:<port>, and prints one JSON line on
// stdout when ready: {"port":…,"issuer":…,"jwks_uri":…,"token_endpoint":…,"kids":[…],"next_kid":…}.
// It needs no network besides loopback.
//
// Tokens: POST /token with grant_type=client_credentials, client_secret_basic, `scope` and
// `resource`. Any absolute http(s) `resource` is a resource server here (so that a test can get
// a token for another audience); without `resource` the token is for --resource. Every token is
// an RS256 JWT, header `typ: at+jwt`, claims iss, sub (= client_id), client_id, aud (= the
// resource), scope, iat, exp, jti.
//
// Test-only admin routes (not oidc-provider's):
//   POST /_admin/rotate  The key set of an oidc-provider instance is fixed, so rotating serves
//                        a new instance behind the same port: JWKS [next key, ...current keys];
//                        the new instance signs with the next key; a new next key is made.
//                        SIGUSR2 does the same. Answers the state (as GET /_admin/state).
//   POST /_admin/mint    Signs a token the test shapes: body {"header":{…},"claims":{…},
//                        "key":"current"|"next"|"hmac-public-pem"}. Header defaults
//                        {alg: RS256, typ: at+jwt, kid}, claims default to what the token
//                        endpoint would issue for the first client and --resource; a claim or
//                        header field given as null is removed; a `crit` header is signed
//                        as given. "next" signs with the key only published after the next
//                        rotation; "hmac-public-pem" signs HS256 with
//                        the current public key's PEM (SPKI) bytes as the secret, the
//                        algorithm-confusion attack. Answers {"token": "…"}.
//   GET  /_admin/state   {"kids": [published kids, signing first], "next_kid": "…"}.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    resource: { type: 'string', default: 'http://127.0.0.1:8080/mcp' },
    scopes: { type: 'string', default: 'mcp:tools mcp:echo mcp:admin' },
    client: { type: 'string', multiple: true },
    ttl: { type: 'string', default: '300' },
  },
  allowPositionals: false,
});

const SCOPES = args.scopes.split(/[\s,]+/).filter(Boolean);
const TTL = Number.parseInt(args.ttl, 10);
const CLIENTS = (args.client ?? (process.env.SHOAL_OIDC_CLIENTS?.split(',').filter(Boolean))
  ?? ['shoal-test:shoal-test-secret', 'shoal-other:shoal-other-secret'])
  .map((pair) => {
    const at = pair.indexOf(':');
    if (at <= 0) throw new Error(`--client ${pair}: expected ID:SECRET`);
    return { id: pair.slice(0, at), secret: pair.slice(at + 1) };
  });

let keyCounter = 0;
function newKey() {
  keyCounter += 1;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `key-${keyCounter}-${crypto.randomBytes(4).toString('hex')}`;
  return {
    kid,
    privateKey,
    publicKey,
    jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
  };
}

// Signing key first; older keys stay published.
let keys = [newKey()];
let nextKey = newKey();

function isResourceUrl(value) {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.hash;
  } catch {
    return false;
  }
}

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: CLIENTS.map(({ id, secret }) => ({
      client_id: id,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
    })),
    jwks: { keys: keys.map((key) => key.jwk) },
    scopes: ['openid', ...SCOPES],
    cookies: { keys: ['shoal-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => args.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (!isResourceUrl(resourceIndicator)) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: SCOPES.join(' '),
            audience: resourceIndicator,
            accessTokenTTL: TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: { ClientCredentials: TTL },
  });
  provider.on('server_error', (_ctx, error) => {
    console.error('oidc-provider server_error:', error);
  });
  return provider;
}

function state() {
  return { kids: keys.map((key) => key.kid), next_kid: nextKey.kid };
}

function rotate(issuer) {
  keys = [nextKey, ...keys];
  nextKey = newKey();
  current = makeProvider(issuer).callback();
  console.error(`rotated: signing with ${keys[0].kid}, publishing ${state().kids.join(', ')}`);
  return state();
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function withoutNulls(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null));
}

async function mint(issuer, body) {
  const now = Math.floor(Date.now() / 1000);
  const client = CLIENTS[0].id;
  const claims = withoutNulls({
    iss: issuer,
    sub: client,
    client_id: client,
    aud: args.resource,
    scope: SCOPES.join(' '),
    iat: now,
    exp: now + TTL,
    jti: crypto.randomUUID(),
    ...body.claims,
  });
  const which = body.key ?? 'current';
  let secret;
  let header;
  if (which === 'current' || which === 'next') {
    const key = which === 'current' ? keys[0] : nextKey;
    secret = key.privateKey;
    header = { alg: 'RS256', typ: 'at+jwt', kid: key.kid };
  } else if (which === 'hmac-public-pem') {
    secret = Buffer.from(keys[0].publicKey.export({ type: 'spki', format: 'pem' }));
    header = { alg: 'HS256', typ: 'at+jwt', kid: keys[0].kid };
  } else {
    throw new Error(`unknown key ${JSON.stringify(which)}`);
  }
  header = withoutNulls({ ...header, ...body.header });
  // jose refuses to sign a `crit` header it does not understand unless told that the caller
  // does: a test names unknown critical parameters on purpose.
  const crit = Object.fromEntries((header.crit ?? []).map((name) => [name, true]));
  const token = await new jose.SignJWT(claims).setProtectedHeader(header).sign(secret, { crit });
  return { token };
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

let current = null;
let issuer = null;

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path.startsWith('/_admin/')) {
    (async () => {
      if (req.method === 'GET' && path === '/_admin/state') return reply(res, 200, state());
      if (req.method === 'POST' && path === '/_admin/rotate') return reply(res, 200, rotate(issuer));
      if (req.method === 'POST' && path === '/_admin/mint') {
        return reply(res, 200, await mint(issuer, await readJson(req)));
      }
      return reply(res, 404, { error: 'not_found' });
    })().catch((error) => reply(res, 400, { error: String(error?.message ?? error) }));
    return;
  }
  current(req, res);
});

server.listen(Number.parseInt(args.port, 10), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  current = makeProvider(issuer).callback();
  process.on('SIGUSR2', () => rotate(issuer));
  process.stdout.write(`${JSON.stringify({
    port,
    issuer,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    ...state(),
  })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
