// Starts oauth2-mock-server on loopback the way the auth tests and the README walk-through use it.
//
//   node serve.mjs [port]          (0 or nothing: a free port)
//
// Environment: TOKEN_TTL_S (access token lifetime, default 3600), CLIENT_ID and CLIENT_SECRET
// (when set, token requests must authenticate with them, by HTTP Basic or in the form body).
//
// On top of the library's endpoints (/authorize, /token, /jwks, ...) this start script adds what
// a real provider does and the mock leaves out: refresh tokens rotate (each one is accepted once;
// reuse, revocation or an unknown token is `invalid_grant`), POST /revoke (RFC 7009, form field
// `token`) really revokes, and GET /_stats reports how many token requests of each grant type
// arrived and how many presented a refresh token that was no longer valid. Prints one JSON line
// {"issuer": "http://127.0.0.1:PORT"} once it listens.
import { createServer } from 'node:http';
import { OAuth2Issuer, OAuth2Service, Events } from 'oauth2-mock-server';

const ttl = Number(process.env.TOKEN_TTL_S ?? '3600');
const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;

const issuer = new OAuth2Issuer();
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer);

const live = new Set();
const stats = { token_requests: {}, refused_refresh_tokens: 0, revoked: 0 };

function clientOf(req) {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    return [decodeURIComponent(decoded.slice(0, at)), decodeURIComponent(decoded.slice(at + 1))];
  }
  return [req.body?.client_id, req.body?.client_secret];
}

service.on(Events.BeforeTokenSigning, (token) => {
  token.payload.exp = Math.floor(Date.now() / 1000) + ttl;
});

service.on(Events.BeforeResponse, (response, req) => {
  const grant = req.body.grant_type;
  stats.token_requests[grant] = (stats.token_requests[grant] ?? 0) + 1;
  if (clientId !== undefined) {
    const [id, secret] = clientOf(req);
    const assertion = grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer';
    if (id !== clientId || (!assertion && secret !== clientSecret)) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client authentication failed' };
      return;
    }
  }
  if (grant === 'refresh_token') {
    const presented = req.body.refresh_token;
    if (!live.delete(presented)) {
      stats.refused_refresh_tokens += 1;
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'the refresh token is invalid, used or revoked' };
      return;
    }
  }
  if (response.body.refresh_token) live.add(response.body.refresh_token);
  response.body.expires_in = ttl;
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
    const token = new URLSearchParams(await readBody(req)).get('token');
    if (token && live.delete(token)) stats.revoked += 1;
    res.writeHead(200).end();
    return;
  }
  if (req.method === 'GET' && path === '/_stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
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
