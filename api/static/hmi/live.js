// The live feed: one WebSocket to /api/v1/live that reconnects by itself (backing off to 5 s)
// and is dropped and reopened when it goes quiet (the server sends a snapshot twice a second).
const QUIET_MS = 5000;

export class LiveFeed {
  constructor() {
    this.handlers = new Map();
    this.socket = null;
    this.wanted = false;
    this.delayMs = 500;
    this.watchdog = null;
    this.connected = false;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
  }

  emit(type, payload) { for (const fn of this.handlers.get(type) || []) fn(payload); }

  start() { this.wanted = true; this.open(); }

  stop() {
    this.wanted = false;
    clearTimeout(this.watchdog);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/live`);
    this.socket = socket;
    socket.onopen = () => { this.delayMs = 500; this.setConnected(true); this.kick(); };
    socket.onmessage = event => {
      this.kick();
      const message = JSON.parse(event.data);
      this.emit(message.type, message);
      this.emit("*", message);
    };
    let opened = false;
    socket.addEventListener("open", () => { opened = true; });
    socket.onclose = event => {
      if (socket !== this.socket) return;
      clearTimeout(this.watchdog);
      this.setConnected(false);
      if (event.code === 4401) { this.wanted = false; this.emit("logged_out", event); return; }
      // refused at the handshake (e.g. 401 after the login ended): the browser shows no status
      if (!opened) this.emit("refused", event);
      if (this.wanted) {
        setTimeout(() => { if (this.wanted) this.open(); }, this.delayMs);
        this.delayMs = Math.min(this.delayMs * 2, 5000);
      }
    };
  }

  kick() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => { if (this.socket) this.socket.close(4000); }, QUIET_MS);
  }

  setConnected(connected) {
    if (connected !== this.connected) { this.connected = connected; this.emit("connection", connected); }
  }
}
