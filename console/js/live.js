// The console WebSocket (/api/agent/ws): pushes in, reconnects with backoff after a drop, and
// resumes where it left off: every push carries an `event_id`, and a reconnect passes the last one
// seen (`?last_event_id=`) so the gateway replays what was missed while the socket was down
// (docs/api.md). The cookie authenticates the upgrade; the gateway pings and the browser answers
// by itself, so no application heartbeat is needed. Close code 4001 means the session ended.

export function connectLive({ onMessage, onState, onSignedOut }) {
  let ws = null;
  let delay = 1000;
  let stopped = false;
  let timer = null;
  let lastEventId = null;

  function url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const resume = lastEventId ? `?last_event_id=${encodeURIComponent(lastEventId)}` : '';
    return `${scheme}//${location.host}/api/agent/ws${resume}`;
  }

  function open() {
    ws = new WebSocket(url());
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
      if (typeof msg.event_id === 'string') lastEventId = msg.event_id;
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
