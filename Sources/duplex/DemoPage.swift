/// The page `duplex serve` shows at `/`: a chat room over the browser's own WebSocket, live figures
/// and the JSON heartbeat. Plain HTML and JavaScript, no build step.
enum DemoPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Duplex demo</title>
    <style>
      body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
      h1 { font-size: 1.4rem; }
      #figures { display: flex; gap: 1.5rem; margin: .5rem 0 1rem; color: #555; }
      #figures b { color: #111; }
      #log { border: 1px solid #ccc; border-radius: 6px; height: 18rem; overflow-y: auto; padding: .5rem; background: #fafafa; }
      #log div { white-space: pre-wrap; }
      .system { color: #888; font-style: italic; }
      form { display: flex; gap: .5rem; margin-top: .5rem; }
      input[type=text] { flex: 1; padding: .4rem; }
    </style>
    </head>
    <body>
    <h1>Duplex</h1>
    <div id="figures">
      <span>state <b id="state">connecting</b></span>
      <span>connections <b id="connections">–</b></span>
      <span>messages/s <b id="rate">–</b></span>
      <span>heartbeat <b id="latency">–</b></span>
    </div>
    <div id="log" aria-live="polite"></div>
    <form id="form">
      <input id="room" type="text" value="lobby" size="10" aria-label="room" style="flex: 0 0 7rem">
      <input id="text" type="text" placeholder="Say something" autocomplete="off" aria-label="message">
      <button>Send</button>
    </form>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    const received = [];           // what the page received, for tests
    window.duplexReceived = received;
    window.duplexPongs = [];       // the heartbeat's answers, for tests
    let ws, pingTimer, chat = true;

    function show(text, system) {
      const line = document.createElement("div");
      line.textContent = text;
      if (system) line.className = "system";
      $("log").appendChild(line);
      $("log").scrollTop = $("log").scrollHeight;
    }

    function connect() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const path = chat ? "/chat/" + encodeURIComponent($("room").value || "lobby") : "/echo";
      ws = new WebSocket(scheme + "//" + location.host + path);
      $("state").textContent = "connecting";
      ws.onopen = () => {
        $("state").textContent = "open";
        show("joined " + (chat ? "room " + ($("room").value || "lobby") : "echo (start the server with --chat for rooms)"), true);
        clearInterval(pingTimer);
        const ping = () => ws.send(JSON.stringify({ type: "ping", value: Date.now() }));
        ping();
        pingTimer = setInterval(ping, 10000);
      };
      ws.onmessage = (event) => {
        if (typeof event.data === "string" && event.data.startsWith('{"pong"')) {
          window.duplexPongs.push(event.data);
          $("latency").textContent = (Date.now() - Number(JSON.parse(event.data).pong)) + " ms";
          return;
        }
        received.push(event.data);
        show(typeof event.data === "string" ? event.data : "[binary]");
      };
      ws.onclose = (event) => {
        $("state").textContent = "closed " + event.code;
        clearInterval(pingTimer);
        show("closed: " + event.code + (event.reason ? " " + event.reason : ""), true);
      };
    }

    $("form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (ws && ws.readyState === WebSocket.OPEN && $("text").value) {
        ws.send($("text").value);
        $("text").value = "";
      }
    });
    $("room").addEventListener("change", () => { ws.close(1000); connect(); });

    let last;
    async function figures() {
      try {
        const stats = await (await fetch("/stats")).json();
        $("connections").textContent = stats.connections;
        if (last) $("rate").textContent = Math.round((stats.messages - last.messages) / ((Date.now() - last.at) / 1000));
        last = { messages: stats.messages, at: Date.now() };
        return stats;
      } catch (error) { return null; }
    }
    figures().then((stats) => { if (stats) chat = stats.chat; connect(); });
    setInterval(figures, 1000);
    </script>
    </body>
    </html>
    """#
}
