// A person's browser through Shoal's OAuth pages: Debian's Chromium, headless, driven by
// playwright-core. Run by `cargo xtask browser`, which starts the upstream provider and
// `shoal --auth oauth` (its public URL RESOURCE, its issuer ORIGIN).
//
//   node consent.mjs --origin ORIGIN --resource RESOURCE --out DIR [--login NAME]
//
// 0. Registers a public client (Dynamic Client Registration) named "Example Assistant" with
//    the redirect URI http://127.0.0.1:9/callback (nothing listens there: the browser's
//    request to it is answered here).
// 1. Authorizes it (PKCE S256, state, resource): the upstream login page (fill the name, submit), then Shoal's consent page:
//    it names the client and the user, lists the scopes, may not be framed; a screenshot goes
//    to DIR/consent.png; Allow sends the browser to the client's redirect URI (PREFIX) with
//    code, state and iss (the request is answered here, nothing listens there).
// 2. Again: the same user (signed in upstream already) denies: error=access_denied.
// 3. An authorization request of an unknown client: 400, an error page that says
//    why and links nowhere; a screenshot goes to DIR/error.png.
// Prints one JSON line of what it saw; exits 1 with the reason on the first failure.
//
// Chromium is $SHOAL_CHROMIUM or /usr/bin/chromium.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    origin: { type: 'string' },
    resource: { type: 'string' },
    out: { type: 'string' },
    login: { type: 'string', default: 'alice' },
  },
});
for (const name of ['origin', 'resource', 'out']) {
  if (!args[name]) fail(`--${name} is required`);
}
mkdirSync(args.out, { recursive: true });
const CLIENT_NAME = 'Example Assistant';
const REDIRECT = 'http://127.0.0.1:9/callback';

const registration = await fetch(`${args.origin}/oauth/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    client_name: CLIENT_NAME,
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  }),
});
if (registration.status !== 201) fail(`registration answered ${registration.status}: ${await registration.text()}`);
const { client_id: clientId } = await registration.json();

/// An authorization URL of the registered client (or of `client`).
function authorizeUrl(client = clientId) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${args.origin}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client,
    redirect_uri: REDIRECT,
    state: 'browser-state',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    resource: args.resource,
    scope: 'mcp:tools mcp:echo offline_access',
  }).toString();
  return url.toString();
}

function fail(message) {
  console.error(`browser check failed: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

const TIMEOUT = 15_000;

/// Answers the navigation to the client's redirect URI here, and resolves with its URL.
function catchRedirect(page) {
  return new Promise((resolve) => {
    page.route(`${REDIRECT}**`, (route) => {
      resolve(new URL(route.request().url()));
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'the client got it' });
    });
  });
}

const browser = await chromium.launch({
  executablePath: process.env.SHOAL_CHROMIUM || '/usr/bin/chromium',
  // Root in a container has no user namespace for Chromium's sandbox.
  args: ['--no-sandbox'],
});
const seen = {};
try {
  const context = await browser.newContext({ viewport: { width: 800, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  // 1. Sign in upstream, see the consent page, allow.
  let redirected = catchRedirect(page);
  await page.goto(authorizeUrl());
  await page.fill('input[name="login"]', args.login);
  const [consent] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/oauth/consent'),
    page.click('button[type="submit"], input[type="submit"]'),
  ]);
  await page.waitForSelector('form[action="/oauth/consent"]');
  check(consent.status() === 200, `the consent page answered ${consent.status()}`);
  const headers = consent.headers();
  check(/frame-ancestors 'none'/.test(headers['content-security-policy'] ?? ''),
    `the consent page may be framed: ${headers['content-security-policy']}`);
  check(headers['cache-control'] === 'no-store', 'the consent page may be cached');
  const heading = (await page.textContent('h1')) ?? '';
  check(heading.includes(CLIENT_NAME), `the heading does not name the client: ${heading}`);
  const text = (await page.textContent('main')) ?? '';
  check(text.includes(`${args.login}@example.test`), `the page does not name the user: ${text}`);
  check(text.includes('mcp:echo') && text.includes('Call the tool echo'),
    `the page does not list the scopes: ${text}`);
  await page.screenshot({ path: join(args.out, 'consent.png'), fullPage: true });
  seen.consent = { heading, status: consent.status() };
  await page.click('button[value="approve"]');
  let url = await redirected;
  await page.waitForURL(`${REDIRECT}**`);
  check(url.searchParams.get('code'), `no code in ${url}`);
  check(url.searchParams.get('state') === 'browser-state', `state is not carried: ${url}`);
  check(url.searchParams.get('iss'), `no iss in ${url}`);
  seen.approved = { code: true, state: url.searchParams.get('state'), iss: url.searchParams.get('iss') };

  // 2. Again, and deny (the upstream provider remembers the user: straight to consent).
  redirected = catchRedirect(page);
  await page.goto(authorizeUrl());
  if (await page.$('input[name="login"]')) {
    await page.fill('input[name="login"]', args.login);
    await page.click('button[type="submit"], input[type="submit"]');
  }
  await page.waitForSelector('button[value="deny"]');
  await page.click('button[value="deny"]');
  url = await redirected;
  await page.waitForURL(`${REDIRECT}**`);
  check(url.searchParams.get('error') === 'access_denied', `denying gave ${url}`);
  seen.denied = { error: url.searchParams.get('error') };

  // 3. The error page.
  const response = await page.goto(authorizeUrl('not-a-registered-client'));
  check(response.status() === 400, `the error page answered ${response.status()}`);
  const errorText = (await page.textContent('main')) ?? '';
  check(errorText.includes('not registered'), `the error page does not say why: ${errorText}`);
  check((await page.$$('a[href]')).length === 0, 'the error page links somewhere');
  await page.screenshot({ path: join(args.out, 'error.png'), fullPage: true });
  seen.error = { status: response.status(), text: errorText.trim() };

  console.log(JSON.stringify(seen));
} catch (error) {
  fail(error.stack ?? String(error));
} finally {
  await browser.close();
}
