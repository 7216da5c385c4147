// A machine's console (xterm.js) and screen (noVNC) on its page. The page renders the panels
// (app/src/pages/console.rs); this module brings them to life when the person opens one.
//
// Each connection asks the portal for a single-use ticket (session + CSRF token) and opens the
// WebSocket it names. The text console's protocol (server/src/api/console.rs): binary frames are
// terminal bytes both ways, text frames are JSON control messages (resize, ping; status, closed).
// Keystrokes go out as binary frames, which is why xterm.js's attach addon is not used.
//
// This module is small and registers its click handler at once; xterm.js and noVNC (dozens of
// modules) load when a console or screen is first opened.

const RETRY_MS = 2000;

// The session's CSRF token from the card's hidden field (filled once the session has loaded).
async function csrf(root) {
  for (let i = 0; i < 50; i++) {
    const value = root.querySelector('input[name="csrf"]')?.value;
    if (value) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  return '';
}

async function ticket(root, kind) {
  const machine = root.dataset.machine;
  const response = await fetch(`/portal/machines/${machine}/console?kind=${kind}`, {
    method: 'POST',
    headers: { 'x-csrf-token': await csrf(root) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || `The server answered ${response.status}`);
    // A machine that is gone or not yours stays so; anything else is worth another try.
    error.final = response.status === 404 || response.status === 401;
    throw error;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}${body.path}?ticket=${encodeURIComponent(body.ticket)}`;
}

function say(el, text, tone) {
  el.textContent = text;
  el.dataset.tone = tone || '';
}

// The text console: one terminal, reconnected with a fresh ticket whenever the socket drops,
// until the server says the console is over (machine deleted, access ended) or the page closes.
async function openConsole(root) {
  const panel = root.querySelector('[data-terminal]');
  const status = root.querySelector('[data-console-status]');
  if (panel.dataset.open) return;
  panel.dataset.open = '1';
  panel.hidden = false;
  say(status, 'Loading the terminal…');
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import('/vendor/xterm/xterm.mjs'),
    import('/vendor/xterm/addon-fit.mjs'),
  ]);
  const term = new Terminal({
    cursorBlink: true,
    convertEol: false,
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: { background: '#0f172a' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(panel);
  fit.fit();
  const encoder = new TextEncoder();
  let socket = null;
  let over = false;
  const sendResize = () => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    }
  };
  term.onData((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  term.onBinary((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
    }
  });
  term.onResize(sendResize);
  new ResizeObserver(() => {
    if (!panel.hidden) fit.fit();
  }).observe(panel);

  const connect = async () => {
    say(status, 'Connecting…');
    let url;
    try {
      url = await ticket(root, 'console');
    } catch (e) {
      say(status, e.message, 'error');
      if (!e.final) setTimeout(connect, RETRY_MS);
      return;
    }
    socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      root.dataset.consoleConnected = '1';
      sendResize();
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        term.write(new Uint8Array(event.data));
        return;
      }
      const msg = JSON.parse(event.data);
      if (msg.type === 'status') {
        root.dataset.consoleState = msg.state;
        if (msg.state === 'running') say(status, 'Connected. Type here; several people may be watching this console.', 'ok');
        else if (msg.state === 'connecting') say(status, 'Connecting to the machine…');
        else say(status, `${msg.message || 'The machine is not running'}. This console picks up again when it starts.`, 'warn');
      } else if (msg.type === 'closed') {
        over = true;
        say(status, `Console closed: ${msg.reason}`, 'error');
      }
    };
    socket.onclose = () => {
      delete root.dataset.consoleConnected;
      if (over) return;
      say(status, 'The connection dropped; reconnecting…', 'warn');
      setTimeout(connect, RETRY_MS);
    };
  };
  term.focus();
  connect();
}

// The VM's screen in noVNC, scaled to the panel, with Ctrl-Alt-Del, paste and full screen.
async function openScreen(root) {
  const panel = root.querySelector('[data-screen]');
  const status = root.querySelector('[data-screen-status]');
  if (panel.dataset.open) return;
  panel.dataset.open = '1';
  panel.hidden = false;
  say(status, 'Loading the viewer…');
  const { default: RFB } = await import('/vendor/novnc/core/rfb.js');
  root.querySelector('[data-screen-tools]').hidden = false;
  let rfb = null;
  const connect = async () => {
    say(status, 'Connecting to the screen…');
    let url;
    try {
      url = await ticket(root, 'screen');
    } catch (e) {
      say(status, e.message, 'error');
      if (!e.final) setTimeout(connect, RETRY_MS * 2);
      return;
    }
    rfb = new RFB(panel, url, { wsProtocols: ['binary'] });
    rfb.scaleViewport = true;
    rfb.background = '#0f172a';
    rfb.addEventListener('connect', () => {
      root.dataset.screenConnected = '1';
      say(status, 'Connected to the screen.', 'ok');
    });
    rfb.addEventListener('disconnect', () => {
      delete root.dataset.screenConnected;
      rfb = null;
      say(status, 'The screen disconnected (the machine may have stopped); reconnecting…', 'warn');
      setTimeout(connect, RETRY_MS);
    });
  };
  root.querySelector('[data-ctrl-alt-del]').addEventListener('click', () => rfb && rfb.sendCtrlAltDel());
  root.querySelector('[data-fullscreen]').addEventListener('click', () => panel.requestFullscreen && panel.requestFullscreen());
  root.querySelector('[data-paste]').addEventListener('click', () => {
    const text = root.querySelector('[data-paste-text]').value;
    if (rfb && text) rfb.clipboardPasteFrom(text);
  });
  connect();
}

// Event delegation: the page may be hydrated or re-rendered after this module loaded.
document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-open-console], [data-open-screen]');
  if (!button) return;
  const root = button.closest('[data-console-root]');
  if (!root) return;
  const opening = button.hasAttribute('data-open-console') ? openConsole(root) : openScreen(root);
  button.hidden = true;
  opening.catch((e) => {
    const isConsole = button.hasAttribute('data-open-console');
    const panel = root.querySelector(isConsole ? '[data-terminal]' : '[data-screen]');
    delete panel.dataset.open;
    say(root.querySelector(isConsole ? '[data-console-status]' : '[data-screen-status]'), `Could not open it: ${e.message}`, 'error');
    button.hidden = false;
  });
});
// For tests (and anyone curious): the buttons work from here on.
window.hangarConsoleReady = true;
