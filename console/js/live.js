// The console WebSocket (/api/agent/ws): pushes in, reconnects with backoff after a drop. The
// cookie authenticates the upgrade; the gateway pings and the browser answers by itself, so no
// application heartbeat is needed. Close code 4001 means the session ended: no reconnect.

export function connectLive({ onMessage, onState, onSignedOut }) {
  let ws = null;
  let delay = 1000;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${scheme}//${location.host}/api/agent/ws`);
    onState('connecting');
    ws.onopen = () => {
      delay = 1000;
      onState('open');
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'signed_out') {
        stop();
        onSignedOut();
        return;
      }
      onMessage(msg);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (stopped) return;
      if (ev.code === 4001) {
        stopped = true;
        onSignedOut();
        return;
      }
      onState('closed');
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (ws) ws.close(1000);
  }

  open();
  return { stop };
}
