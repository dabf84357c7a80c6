// Echo server on Node `ws` (Debian's node-ws), for Benchmarks/compare.sh.
// Usage: node server.js <port> [--deflate]. Listens on 127.0.0.1, prints "PORT <n>", echoes text as text
// and binary as binary; --deflate turns on permessage-deflate with ws's defaults.
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const port = Number(args.find((a) => !a.startsWith('--')));
if (!Number.isInteger(port)) {
  console.error('usage: node server.js <port> [--deflate]');
  process.exit(2);
}
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: args.includes('--deflate'),
  maxPayload: 1 << 24,
});
server.on('listening', () => console.log(`PORT ${server.address().port}`));
server.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.on('SIGTERM', () => process.exit(0));
