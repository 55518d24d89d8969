// A real OAuth 2.0 authorization server and OpenID provider for Shoal's auth tests:
// oidc-provider (a certified OpenID provider) issuing RFC 9068 JWT access tokens by the
// client-credentials grant, with resource indicators (RFC 8707) naming the Shoal endpoint as the
// audience, and logging users in for the authorization-code flow of "login clients" (the upstream
// provider that Shoal's own authorization server delegates "who is the user" to).
//
//   node server.mjs [--port N] [--resource URL] [--scopes "a b c"] [--client ID:SECRET]...
//                   [--login-client ID:SECRET:REDIRECT_URI[|REDIRECT_URI...]]...
//                   [--oauth2-client ID]... [--ttl SECONDS]
//
// Defaults: port 0 (any free one), resource http://127.0.0.1:8080/mcp, scopes
// "mcp:tools mcp:echo mcp:admin", clients shoal-test:shoal-test-secret and
// shoal-other:shoal-other-secret, no login client, token lifetime 300 s. `SHOAL_OIDC_CLIENTS`
// (ID:SECRET,...) replaces the default clients when no --client is given.
//
// It listens on 127.0.0.1 only, issuer http://127.0.0.1:<port>, and prints one JSON line on
// stdout when ready: {"port":…,"issuer":…,"jwks_uri":…,"token_endpoint":…,
// "authorization_endpoint":…,"kids":[…],"next_kid":…}. It needs no network besides loopback.
//
// Client-credentials tokens (--client): POST /token with grant_type=client_credentials,
// client_secret_basic, `scope` and `resource`. Any absolute http(s) `resource` is a resource
// server here (so that a test can get a token for another audience); without `resource` the
// token is for --resource. Every token is an RS256 JWT, header `typ: at+jwt`, claims iss, sub
// (= client_id), client_id, aud (= the resource), scope, iat, exp, jti.
//
// Login clients (--login-client, repeatable; a redirect URI holds no `|`): confidential clients
// of the authorization-code flow, grant types authorization_code and refresh_token, response
// type code, client_secret_basic at the token endpoint, scope "openid profile email
// offline_access" plus --scopes, exactly the redirect URIs given. PKCE is required for them,
// S256 only (oidc-provider 9 knows no other method); without it the browser is sent back to the
// redirect URI with error=invalid_request. The flow:
//   GET /auth?response_type=code&client_id=…&redirect_uri=…&scope=openid…&state=…&nonce=…
//       &code_challenge=…&code_challenge_method=S256
//     → 303 to /interaction/<uid> (cookies `_interaction`, `_interaction_resume`).
//   GET /interaction/<uid>  200, a small HTML login page: one
//       <form method="post" action="/interaction/<uid>/login"> with a text input `login` and a
//       submit button. Without a valid interaction cookie: 400, text/plain, "no such login in
//       progress (…)".
//   POST /interaction/<uid>/login  (form-urlencoded `login=<name>`): logs in account <name> and
//       grants, in the same step, every scope the request asked for (OpenID scopes, and --scopes
//       for the requested resources or --resource), so there is no upstream consent page;
//       → 303 back to /auth/<uid> → 303 to redirect_uri?code=…&state=…&iss=…
//       An empty or missing `login` answers 400, text/plain: "login: enter a user name".
//   POST /token grant_type=authorization_code&code=…&redirect_uri=…&code_verifier=…
//       (client_secret_basic) → {access_token, id_token, token_type, expires_in, scope}; a
//       refresh_token too when offline_access was asked for with prompt=consent.
// --oauth2-client ID makes login client ID the client of a plain (GitHub-style) OAuth 2
// upstream: it authenticates at the token endpoint with client_secret_post only (Basic answers
// 401 invalid_client), and asking for no resource it gets an opaque access token for the
// userinfo endpoint (GET /me, `Authorization: Bearer`; answers {sub, name, email,
// email_verified} as scoped): a plain OAuth 2 client learns who the user is there.
// Accounts exist for any name: sub = name = <name>, email = <name>@example.test,
// email_verified = true. The id_token is RS256 with the provider's current key, aud = the client
// id, and carries the request's `nonce`; it carries name and email too when the access token
// is a JWT for a resource (always here: without `resource` it is for --resource).
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
    'login-client': { type: 'string', multiple: true },
    'oauth2-client': { type: 'string', multiple: true },
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

// ID:SECRET:URI|URI…; the secret holds no `:` and the URIs (which do) come last.
const LOGIN_CLIENTS = (args['login-client'] ?? []).map((spec) => {
  const first = spec.indexOf(':');
  const second = spec.indexOf(':', first + 1);
  const redirectUris = second > 0 ? spec.slice(second + 1).split('|').filter(Boolean) : [];
  if (first <= 0 || second <= first + 1 || redirectUris.length === 0) {
    throw new Error(`--login-client ${spec}: expected ID:SECRET:REDIRECT_URI[|REDIRECT_URI...]`);
  }
  return { id: spec.slice(0, first), secret: spec.slice(first + 1, second), redirectUris };
});
const LOGIN_CLIENT_IDS = new Set(LOGIN_CLIENTS.map(({ id }) => id));
const OAUTH2_CLIENT_IDS = new Set(args['oauth2-client'] ?? []);
for (const id of OAUTH2_CLIENT_IDS) {
  if (!LOGIN_CLIENT_IDS.has(id)) throw new Error(`--oauth2-client ${id}: not a --login-client`);
}
// The OpenID scopes a login client may ask for, and the claims each one releases.
const OIDC_CLAIMS = {
  openid: ['sub'],
  profile: ['name'],
  email: ['email', 'email_verified'],
};
// offline_access (refresh tokens) is granted when asked for with prompt=consent, as OpenID
// Connect says; oidc-provider only knows the refresh_token grant when that scope exists.
const OIDC_SCOPES = [...Object.keys(OIDC_CLAIMS), 'offline_access'];

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
    clients: [
      ...CLIENTS.map(({ id, secret }) => ({
        client_id: id,
        client_secret: secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPES.join(' '),
      })),
      ...LOGIN_CLIENTS.map(({ id, secret, redirectUris }) => ({
        client_id: id,
        client_secret: secret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        token_endpoint_auth_method: OAUTH2_CLIENT_IDS.has(id) ? 'client_secret_post' : 'client_secret_basic',
        scope: [...OIDC_SCOPES, ...SCOPES].join(' '),
      })),
    ],
    claims: OIDC_CLAIMS,
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({
        sub: id,
        name: id,
        email: `${id}@example.test`,
        email_verified: true,
      }),
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: (_ctx, client) => LOGIN_CLIENT_IDS.has(client.clientId) },
    jwks: { keys: keys.map((key) => key.jwk) },
    scopes: [...OIDC_SCOPES, ...SCOPES],
    cookies: { keys: ['shoal-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) => (OAUTH2_CLIENT_IDS.has(client?.clientId) ? undefined : args.resource),
        useGrantedResource: (_ctx, model) => !OAUTH2_CLIENT_IDS.has(model?.clientId),
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
    ttl: { ClientCredentials: TTL, AccessToken: TTL },
  });
  provider.on('server_error', (_ctx, error) => {
    console.error('oidc-provider server_error:', error);
  });
  return provider;
}

function state() {
  return { kids: keys.map((key) => key.kid), next_kid: nextKey.kid };
}

function serve(issuer) {
  provider = makeProvider(issuer);
  current = provider.callback();
}

function rotate(issuer) {
  keys = [nextKey, ...keys];
  nextKey = newKey();
  serve(issuer);
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

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function text(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${body}\n`);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, params) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Log in</title></head>
<body>
<h1>Log in to ${escapeHtml(issuer)}</h1>
<p>${escapeHtml(params.client_id)} asks for: ${escapeHtml(params.scope)}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>User name <input type="text" name="login" autofocus></label>
<button type="submit">Log in</button>
</form>
</body></html>
`;
}

// The requested scopes, granted whole. oidc-provider checks every scope it knows (--scopes too)
// as an OpenID scope of the grant, and --scopes again per resource: each requested resource,
// else --resource (the default resource of every request).
async function grantEverything(details, accountId) {
  const { params } = details;
  // A grant of the session's is extended; a revoked one (a code used twice) is gone.
  const grant = (details.grantId && await provider.Grant.find(details.grantId))
    || new provider.Grant({ accountId, clientId: params.client_id });
  const requested = String(params.scope ?? '').split(' ').filter(Boolean);
  const known = requested.filter((scope) => OIDC_SCOPES.includes(scope) || SCOPES.includes(scope));
  grant.addOIDCScope(known.join(' '));
  const resourceScopes = requested.filter((scope) => SCOPES.includes(scope)).join(' ');
  const resources = OAUTH2_CLIENT_IDS.has(params.client_id) ? params.resource : params.resource ?? args.resource;
  for (const resource of [resources ?? []].flat()) {
    grant.addResourceScope(resource, resourceScopes);
  }
  return grant.save();
}

async function interaction(req, res, path) {
  const [, , uid, action] = path.split('/');
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (error) {
    return text(res, 400, `no such login in progress (${error.error_description ?? error.message}): start again at the client`);
  }
  if (details.uid !== uid) return text(res, 400, 'this login page belongs to another login');
  if (req.method === 'GET' && action === undefined) {
    const { prompt } = details;
    console.error(`interaction ${uid}: ${prompt.name} (${prompt.reasons.join(', ')})`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(loginPage(uid, details.params));
  }
  if (req.method === 'POST' && action === 'login') {
    const login = ((await readForm(req)).get('login') ?? '').trim();
    if (!login) return text(res, 400, 'login: enter a user name');
    const grantId = await grantEverything(details, login);
    console.error(`login: ${login} for ${details.params.client_id}`);
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: login }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }
  return text(res, 404, `no ${req.method} ${path}`);
}

let provider = null;
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
  if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((error) => {
      console.error('interaction failed:', error);
      if (!res.headersSent) text(res, 500, `interaction failed: ${error.message}`);
    });
    return;
  }
  // oidc-provider takes either client_secret method whichever was registered; a plain OAuth 2
  // client is held to client_secret_post here, so that a test sees which one was sent.
  if (req.method === 'POST' && path === '/token' && OAUTH2_CLIENT_IDS.has(basicClientId(req))) {
    return reply(res, 401, {
      error: 'invalid_client',
      error_description: 'this client authenticates with client_secret_post',
    });
  }
  current(req, res);
});

// The client id of an `Authorization: Basic` header (RFC 6749 §2.3.1 form-encodes it).
function basicClientId(req) {
  const [scheme, credentials] = (req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !credentials) return undefined;
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
}

server.listen(Number.parseInt(args.port, 10), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  serve(issuer);
  process.on('SIGUSR2', () => rotate(issuer));
  process.stdout.write(`${JSON.stringify({
    port,
    issuer,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    authorization_endpoint: `${issuer}/auth`,
    ...state(),
  })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
