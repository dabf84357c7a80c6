// Echo server on Node `ws` (Debian's node-ws) for Duplex's interop tests.
// Binds 127.0.0.1 on --port (0: a free port), prints "PORT <n>", echoes text as text and binary as
// binary, and exits when standard input closes or on SIGTERM.
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
let port = 0;
const subprotocols = [];
let deflate = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--subprotocol') subprotocols.push(args[++i]);
  else if (args[i] === '--deflate') deflate = true;
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: deflate,
  maxPayload: 1 << 24,
  handleProtocols: (offered) => {
    for (const p of offered) if (subprotocols.includes(p)) return p;
    return false;
  },
});
server.on('listening', () => console.log(`PORT ${server.address().port}`));
server.on('connection', (ws) => {
  ws.on('error', () => {}); // a peer's protocol error closes that connection only, never the server
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
