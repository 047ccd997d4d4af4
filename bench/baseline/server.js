// The baseline for bench/run: node-webot's `wechat` middleware verifies the signature (and in
// safe mode msg_signature and decryption), parses the XML and echoes the text back. It stores
// nothing. Usage: node server.js PORT TOKEN APPID ENCODING_AES_KEY  |  node server.js PORT --trivial
const http = require('http');
const wechat = require('wechat');

const [port, token, appid, encodingAESKey] = process.argv.slice(2);
let handler;
if (token === '--trivial') {
  // The load generator's ceiling: a server that does nothing but answer.
  handler = (req, res) => { req.resume(); req.on('end', () => res.end('success')); };
} else {
  const mw = wechat({ token, appid, encodingAESKey, checkSignature: true }, (req, res) => {
    res.reply(req.weixin.Content || '');
  });
  handler = (req, res) => {
    req.query = Object.fromEntries(new URL(req.url, 'http://x').searchParams);
    mw(req, res, () => { res.statusCode = 404; res.end(); });
  };
}
http.createServer(handler).listen(Number(port), '127.0.0.1');
