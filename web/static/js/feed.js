// feed.js: the live event feed. The events table's <tbody id="feed" data-stream="URL"
// data-newest="ID"> is fed by server-sent events: each "row" message is one <tr> rendered by the
// same server component as the rows already on the page. EventSource reconnects by itself and
// sends Last-Event-ID, so the server resumes without gaps or duplicates.
//
// Pause (a toggle button: its label stays, aria-pressed says whether the feed is paused) keeps
// the connection and counts what arrives next to the button; pressing it again shows the rows.
// New rows are announced in the [data-feed-announce] live region, once per burst. The .live
// indicator says whether the stream is connecting, live, paused or offline.
(function () {
  'use strict';

  const body = document.getElementById('feed');
  if (!body || !body.dataset.stream || typeof EventSource === 'undefined') return;

  const MAX_ROWS = 500;
  const live = document.querySelector('.live[data-state]');
  const label = live && live.querySelector('.live-label');
  const toggle = document.querySelector('[data-feed-toggle]');
  const heldNote = document.querySelector('[data-feed-held]');
  const announcer = document.querySelector('[data-feed-announce]');
  const empty = document.querySelector('[data-testid="events-empty"]');
  let paused = false;
  let held = [];

  function setState(state, text) {
    if (!live) return;
    live.dataset.state = state;
    if (label) label.textContent = text || state;
  }

  // announce tells screen readers about new rows: the row itself when one arrives, a count when
  // several arrive together (announced after the burst, not once per row).
  let fresh = [];
  let announceTimer = 0;
  function announce(row) {
    if (!announcer) return;
    fresh.push(row);
    if (announceTimer) return;
    announceTimer = window.setTimeout(() => {
      announceTimer = 0;
      const text = fresh.length === 1
        ? 'New event: ' + fresh[0].textContent.replace(/\s+/g, ' ').trim().slice(0, 160)
        : fresh.length + ' new events';
      fresh = [];
      announcer.textContent = text;
    }, 500);
  }

  function insert(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = html.trim();
    const row = tpl.content.firstElementChild;
    if (!row || document.getElementById(row.id)) return; // already shown
    row.classList.add('is-new');
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    if (empty) empty.hidden = true;
    if (window.dashboard && window.dashboard.refreshTimes) window.dashboard.refreshTimes(row);
    announce(row);
  }

  function showHeld() {
    held.forEach(insert);
    held = [];
  }

  function updateToggle() {
    if (!toggle) return;
    toggle.setAttribute('aria-pressed', paused ? 'true' : 'false');
    if (heldNote) {
      heldNote.hidden = !paused;
      heldNote.textContent = held.length ? held.length + ' new, shown when you unpause' : 'paused';
    }
  }

  let url = body.dataset.stream;
  url += (url.indexOf('?') < 0 ? '?' : '&') + 'last_id=' + encodeURIComponent(body.dataset.newest || '0');
  const es = new EventSource(url);
  es.addEventListener('open', () => setState(paused ? 'paused' : 'live', paused ? 'paused' : 'live'));
  es.addEventListener('error', () => {
    setState(es.readyState === EventSource.CLOSED ? 'offline' : 'connecting', es.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting');
  });
  es.addEventListener('row', (e) => {
    if (paused) {
      held.push(e.data);
      updateToggle();
      return;
    }
    insert(e.data);
  });
  // The server asks for a reload when the gap since the last event is too large to backfill.
  es.addEventListener('reload', () => { es.close(); window.location.reload(); });

  if (toggle) {
    toggle.addEventListener('click', () => {
      paused = !paused;
      if (!paused) showHeld();
      setState(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
      updateToggle();
    });
  }
  window.addEventListener('pagehide', () => es.close());
})();
