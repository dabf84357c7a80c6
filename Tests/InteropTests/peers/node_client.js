// Client on Node `ws` for Duplex's interop tests: a scripted exchange with an echo server.
// Usage: node_client.js URL [--subprotocol X] [--deflate on|small] [--ca PEM]. Prints "TLS <version>
// <alpn> <serial>" for a wss:// URL (trusting only the CA in PEM), "EXT <extensions>" once connected, "OK <kind>" per echoed message and "CLOSE <code> <reason>" at the end; exits 1 with a
// message on any mismatch. `--deflate on` offers ws's default permessage-deflate (compressing
// messages of 1 KiB or more), `small` no context takeover both ways and 1 KiB / 512-byte windows.
const WebSocket = require('ws');

const args = process.argv.slice(2);
const url = args[0];
const subprotocols = [];
let deflate = false;
let ca;
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--subprotocol') subprotocols.push(args[++i]);
  else if (args[i] === '--ca') ca = require('fs').readFileSync(args[++i]);
  else if (args[i] === '--deflate') {
    deflate = args[++i] === 'small'
      ? { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9, threshold: 0 }
      : { threshold: 1024 };
  }
}

const messages = [
  ['text', 'hello'],
  ['binary', Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 256))],
  ['text', ''],
  ['text', 'héllo wörld ✓ 😀'],
  ['text', '{"event":"tick","symbol":"DPLX","price":101.25}\n'.repeat(3000)],
];

const fail = (why) => { console.log(`FAIL ${why}`); process.exit(1); };
const ws = new WebSocket(url, subprotocols, { perMessageDeflate: deflate, maxPayload: 1 << 24, ca, ALPNProtocols: ['http/1.1'] });
let index = 0;
let agreed = '';
ws.on('upgrade', (response) => { agreed = response.headers['sec-websocket-extensions'] || ''; });
const sendNext = () => {
  const [kind, payload] = messages[index];
  ws.send(payload, { binary: kind === 'binary' });
};
ws.on('open', () => {
  const socket = ws._socket;
  if (socket.encrypted) console.log(`TLS ${socket.getProtocol()} ${socket.alpnProtocol} ${socket.getPeerCertificate().serialNumber}`);
  if (subprotocols.length && !subprotocols.includes(ws.protocol)) fail(`subprotocol ${ws.protocol}`);
  console.log(`EXT ${agreed}`);
  sendNext();
});
ws.on('message', (data, isBinary) => {
  const [kind, payload] = messages[index];
  if (isBinary !== (kind === 'binary')) fail(`${kind} came back as ${isBinary ? 'binary' : 'text'}`);
  const expected = kind === 'binary' ? payload : Buffer.from(payload, 'utf8');
  if (!Buffer.from(data).equals(expected)) fail(`${kind} differs`);
  console.log(`OK ${kind}${kind === 'binary' ? ' ' + payload.length : ''}`);
  index += 1;
  if (index < messages.length) sendNext(); else ws.close(1000, 'bye');
});
ws.on('close', (code) => {
  if (index < messages.length) fail(`closed early with ${code}`);
  if (code !== 1000) fail(`close code ${code}`);
  console.log('CLOSE 1000 bye');
  process.exit(0);
});
ws.on('error', (error) => fail(`error ${error.message}`));
