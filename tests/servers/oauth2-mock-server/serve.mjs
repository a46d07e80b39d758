// Starts oauth2-mock-server on loopback the way the auth tests and the README walk-through use it.
//
//   node serve.mjs [port]          (0 or nothing: a free port)
//
// Environment: CLIENT_ID, CLIENT_SECRET and TOKEN_TTL_S (access token lifetime, default 3600)
// register one client; tests register their own with POST /_clients {"client_id",
// "client_secret", "ttl_s"}. Token requests must authenticate as a registered client (HTTP Basic
// or in the form body; a jwt-bearer assertion names its client_id only).
//
// On top of the library's endpoints (/authorize, /token, /jwks, ...) this start script adds what
// a real provider does and the mock leaves out: refresh tokens rotate (each one is accepted once;
// reuse, revocation or an unknown token is `invalid_grant`), POST /revoke (RFC 7009, form field
// `token`; or `client_id` alone: all of that client's refresh tokens) really revokes, and GET /_stats/<client_id> reports how many token requests of each
// grant type arrived and how many presented a refresh token that was no longer valid. Prints one
// JSON line {"issuer": "http://127.0.0.1:PORT"} once it listens.
import { createServer } from 'node:http';
import { OAuth2Issuer, OAuth2Service, Events } from 'oauth2-mock-server';

const issuer = new OAuth2Issuer();
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer);

// Registered clients: client_id -> {secret, ttl, stats}; each keeps its own counters so that
// tests running against one server do not see each other's requests.
const clients = new Map();
function register(id, secret, ttl) {
  clients.set(id, {
    secret,
    ttl,
    stats: { token_requests: {}, refused_refresh_tokens: 0, revoked: 0 },
  });
}
if (process.env.CLIENT_ID) {
  register(process.env.CLIENT_ID, process.env.CLIENT_SECRET, Number(process.env.TOKEN_TTL_S ?? '3600'));
}
const live = new Map(); // refresh token -> client_id (each is accepted once)

function clientOf(req) {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    return [decodeURIComponent(decoded.slice(0, at)), decodeURIComponent(decoded.slice(at + 1))];
  }
  return [req.body?.client_id, req.body?.client_secret];
}

service.on(Events.BeforeTokenSigning, (token, req) => {
  const client = clients.get(clientOf(req)[0]);
  token.payload.exp = Math.floor(Date.now() / 1000) + (client?.ttl ?? 3600);
});

service.on(Events.BeforeResponse, (response, req) => {
  const grant = req.body.grant_type;
  const [id, secret] = clientOf(req);
  const client = clients.get(id);
  const assertion = grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer';
  if (client === undefined || (!assertion && secret !== client.secret)) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client', error_description: 'client authentication failed' };
    return;
  }
  client.stats.token_requests[grant] = (client.stats.token_requests[grant] ?? 0) + 1;
  if (grant === 'refresh_token') {
    const presented = req.body.refresh_token;
    if (live.get(presented) !== id) {
      client.stats.refused_refresh_tokens += 1;
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'the refresh token is invalid, used or revoked' };
      return;
    }
    live.delete(presented);
  }
  if (response.body.refresh_token) live.set(response.body.refresh_token, id);
  response.body.expires_in = client.ttl;
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const handler = service.requestHandler;
const server = createServer(async (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/revoke') {
    const form = new URLSearchParams(await readBody(req));
    const token = form.get('token');
    const everyOf = token ? undefined : form.get('client_id');
    for (const [candidate, owner] of [...live]) {
      if (candidate === token || (everyOf !== undefined && owner === everyOf)) {
        live.delete(candidate);
        clients.get(owner).stats.revoked += 1;
      }
    }
    res.writeHead(200).end();
    return;
  }
  if (req.method === 'POST' && path === '/_clients') {
    const { client_id: id, client_secret: secret, ttl_s: ttl } = JSON.parse(await readBody(req));
    register(id, secret, Number(ttl ?? 3600));
    res.writeHead(201).end();
    return;
  }
  if (req.method === 'GET' && path.startsWith('/_stats/')) {
    const client = clients.get(decodeURIComponent(path.slice('/_stats/'.length)));
    res.writeHead(client ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(client?.stats ?? {}));
    return;
  }
  handler(req, res);
});

server.listen(Number(process.argv[2] ?? '0'), '127.0.0.1', () => {
  issuer.url = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`${JSON.stringify({ issuer: issuer.url })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
