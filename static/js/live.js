// The live stream (`WS /ws/events`): one WebSocket, reconnected with exponential backoff
// (0.5 s doubling to 10 s, with jitter). Emits `message` ({type, data}), `state`
// (connecting | connected | reconnecting | disconnected) and `resync` after any reconnect,
// since messages sent while it was down are lost: listeners re-fetch what they show.

const MIN_DELAY = 500;
const MAX_DELAY = 10000;

export class Live extends EventTarget {
  constructor(urlOf) {
    super();
    this.urlOf = urlOf;
    this.socket = null;
    this.failures = 0;
    this.everConnected = false;
    this.timer = null;
    this.countdown = null;
    this.state = 'connecting';
    this.retryAt = 0;
  }

  start() {
    this.started = true;
    this.connect();
    window.addEventListener('online', () => this.retryNow());
  }

  /** Drops the current socket and connects again at once (a new token, a click on Retry). */
  retryNow() {
    if (!this.started) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      const old = this.socket;
      this.socket = null;
      old.onclose = null;
      old.close();
    }
    this.connect();
  }

  connect() {
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    let socket;
    try {
      socket = new WebSocket(this.urlOf());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.failures = 0;
      const gap = this.everConnected;
      this.everConnected = true;
      this.setState('connected');
      if (gap) this.dispatchEvent(new Event('resync'));
    };
    socket.onmessage = (e) => {
      if (this.socket !== socket) return;
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      if (message && typeof message.type === 'string') {
        this.dispatchEvent(new CustomEvent('message', { detail: message }));
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.failures);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.failures += 1;
    this.retryAt = Date.now() + delay;
    this.setState('disconnected');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryAt: this.retryAt } }));
  }
}
