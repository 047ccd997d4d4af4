// The baseline for bench/consoles: a server that does nothing but the fan-out. Consoles connect a
// WebSocket to /api/agent/ws with the same bearer tokens as on the gateway; the plan file maps each
// token to its account. A webhook POST /wx/<appid> is answered "success" and its <Content> pushed
// to every console of that account. No signature check, no storage, no routing, no Redis.
// Usage: node consoles.js PORT PLAN_FILE
const http = require('http');
const fs = require('fs');
const { WebSocketServer } = require('ws');

const [port, planFile] = process.argv.slice(2);
const accountOf = new Map();  // token -> appid
for (const line of fs.readFileSync(planFile, 'utf8').split('\n')) {
  const [token, appid] = line.trim().split(/\s+/);
  if (token && appid) accountOf.set(token, appid);
}
const consoles = new Map();  // appid -> Set of sockets

const server = http.createServer((req, res) => {
  const m = /^\/wx\/([^/?]+)/.exec(req.url);
  if (req.method !== 'POST' || !m) { res.statusCode = 404; res.end(); return; }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const content = (/<Content><!\[CDATA\[([\s\S]*?)\]\]><\/Content>/.exec(body) || [])[1] || '';
    const frame = JSON.stringify({ type: 'message', msg_type: 'text', content });
    for (const ws of consoles.get(m[1]) || []) ws.send(frame);
    res.end('success');
  });
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const token = (req.headers.authorization || '').replace(/^Bearer /, '');
  const appid = accountOf.get(token);
  if (!req.url.startsWith('/api/agent/ws') || !appid) { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!consoles.has(appid)) consoles.set(appid, new Set());
    consoles.get(appid).add(ws);
    ws.on('close', () => consoles.get(appid).delete(ws));
    ws.send(JSON.stringify({ type: 'hello' }));
  });
});
server.listen(Number(port), '127.0.0.1');
