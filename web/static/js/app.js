// app.js: the dashboard's small amount of browser behaviour. Plain ES2020, no build step, no
// inline code (strict CSP). Load at the end of <head> with `defer` (or at the end of <body>):
//   <script src="/static/js/app.js" nonce="..." defer></script>
//
// Hooks (all declarative, driven by markup):
//   [data-theme-toggle]        button cycling the theme: system -> light -> dark -> system
//   #lookup-q                  "/" focuses it, Escape leaves it
//   dialog#shortcuts           "?" (or [data-shortcuts-open]) opens it; its rows
//                              tr[data-goto="e"][data-href="/events"] are the "g" + letter go-tos
//   [data-copy="TEXT"]         click copies TEXT, the button says "Copied" for 1.5 s
//   time[data-relative]        text becomes "5m ago", title the absolute local + UTC time
//   form[data-confirm="MSG"]   asks confirm(MSG) before submitting
//   [data-autofocus]           focused on load
//   tr.clickable               a click on the row follows data-href, or the row's first link
//   details[data-fold-narrow="closed"]  starts closed on a phone (≤640 px), always open wider
//   table.table-stack          gets explicit ARIA table roles (its rows stack on a phone)
//   [data-menu-toggle]         opens/closes the narrow-screen drawer (#sidebar, body.nav-open);
//                              [data-menu-close] (the scrim) and Escape close it
// The live feed (rows, .live indicator) is js/feed.js.
// Exposed for other scripts: window.dashboard.refreshTimes(root), window.dashboard.copyText(text).
(function () {
  'use strict';

  const doc = document;
  const root = doc.documentElement;

  // ---------------------------------------------------------------------------------- storage

  function store(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) { /* storage disabled: the choice lasts for this page only */ }
  }

  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  // ------------------------------------------------------------------------------------ theme

  const THEMES = ['system', 'light', 'dark'];

  function currentTheme() {
    const t = root.dataset.theme;
    return t === 'light' || t === 'dark' ? t : 'system';
  }

  // applyTheme sets <html data-theme> ("system" removes it so the CSS media query decides) and
  // updates the label of every toggle button.
  function applyTheme(theme) {
    if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
    else delete root.dataset.theme;
    for (const btn of doc.querySelectorAll('[data-theme-toggle]')) {
      btn.textContent = 'Theme: ' + theme;
      btn.setAttribute('aria-label', 'Colour theme: ' + theme + ' (click to change)');
    }
  }

  doc.addEventListener('click', (e) => {
    const btn = e.target.closest('[data-theme-toggle]');
    if (!btn) return;
    e.preventDefault();
    const next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
    store('theme', next === 'system' ? null : next);
    applyTheme(next);
  });

  // Keep several open tabs in step.
  window.addEventListener('storage', (e) => {
    if (e.key === 'theme' || e.key === null) {
      const t = load('theme');
      applyTheme(t === 'light' || t === 'dark' ? t : 'system');
    }
  });

  // --------------------------------------------------------------------------------- keyboard

  // Go-to shortcuts: press "g", then the letter, within 1.5 s. The shortcuts dialog (rendered in
  // the layout, only with the pages the user's role may open) is the list.
  const shortcuts = doc.getElementById('shortcuts');
  const GOTO = {};
  if (shortcuts) {
    for (const row of shortcuts.querySelectorAll('tr[data-goto][data-href]')) GOTO[row.dataset.goto] = row.dataset.href;
  }
  let gPressedAt = 0;

  function openShortcuts() {
    if (shortcuts && !shortcuts.open && shortcuts.showModal) shortcuts.showModal();
  }

  doc.addEventListener('click', (e) => {
    if (e.target.closest('[data-shortcuts-open]')) openShortcuts();
  });

  function isEditable(el) {
    if (!el || el === doc.body) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT';
  }

  // -------------------------------------------------------------------------------- folding

  // A phone folds the Events filters away (unless a filter is on) so the feed starts near the top;
  // wider screens always show them, and their summary is hidden there by the CSS.
  const narrow = window.matchMedia('(max-width: 640px)');
  function fold() {
    for (const d of doc.querySelectorAll('details[data-fold-narrow]')) {
      d.open = !narrow.matches || d.dataset.foldNarrow !== 'closed';
    }
  }
  fold();
  narrow.addEventListener('change', fold);

  // ------------------------------------------------------------------------------------- menu

  // setMenu opens or closes the drawer that holds the navigation on narrow screens. While open it
  // is a modal dialog: the page behind is inert, so Tab stays in the drawer. Opening moves focus
  // to the current page's link; closing from the keyboard gives it back to the button.
  function setMenu(open, refocus) {
    const btn = doc.querySelector('[data-menu-toggle]');
    const scrim = doc.querySelector('[data-menu-close]');
    const sidebar = doc.getElementById('sidebar');
    const main = doc.querySelector('.main');
    if (!btn || !sidebar) return;
    doc.body.classList.toggle('nav-open', open);
    btn.setAttribute('aria-expanded', String(open));
    if (scrim) scrim.hidden = !open;
    if (main) main.inert = open;
    if (open) {
      sidebar.setAttribute('role', 'dialog');
      sidebar.setAttribute('aria-modal', 'true');
      sidebar.setAttribute('aria-label', 'Menu');
    } else {
      sidebar.removeAttribute('role');
      sidebar.removeAttribute('aria-modal');
      sidebar.removeAttribute('aria-label');
    }
    if (open) {
      const link = doc.querySelector('#sidebar [aria-current="page"]') || doc.querySelector('#sidebar .nav a');
      if (link) link.focus();
    } else if (refocus) {
      btn.focus();
    }
  }

  // Widening the window past the drawer's breakpoint closes it (the sidebar is back in place).
  window.matchMedia('(max-width: 860px)').addEventListener('change', (e) => {
    if (!e.matches && doc.body.classList.contains('nav-open')) setMenu(false, false);
  });

  doc.addEventListener('click', (e) => {
    if (e.target.closest('[data-menu-toggle]')) setMenu(!doc.body.classList.contains('nav-open'), false);
    else if (e.target.closest('[data-menu-close]')) setMenu(false, false);
  });

  doc.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    const search = doc.getElementById('lookup-q');

    // Escape closes the menu, or leaves the search box (the open shortcuts dialog closes itself:
    // it is modal).
    if (e.key === 'Escape') {
      if (doc.body.classList.contains('nav-open')) setMenu(false, true);
      else if (search && doc.activeElement === search) search.blur();
      return;
    }

    // Shift is allowed: "/" needs it on many keyboard layouts.
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (isEditable(e.target) || isEditable(doc.activeElement)) return;
    // NB: a user who finds single-key shortcuts in the way can set localStorage.shortcuts = "off".
    if (load('shortcuts') === 'off') return;

    if (e.key === '?') {
      e.preventDefault();
      openShortcuts();
      return;
    }

    if (e.key === '/' && search) {
      e.preventDefault();
      search.focus();
      search.select();
      return;
    }

    const now = Date.now();
    if (gPressedAt && now - gPressedAt < 1500) {
      gPressedAt = 0;
      const path = GOTO[e.key.toLowerCase()];
      if (path && shortcuts && shortcuts.open) shortcuts.close();
      if (path) {
        e.preventDefault();
        window.location.assign(path);
      }
      return;
    }
    if (e.key === 'g' || e.key === 'G') gPressedAt = now;
  });

  // ------------------------------------------------------------------------------------- copy

  // copyText puts text on the clipboard. navigator.clipboard needs a secure context (https or
  // localhost); elsewhere (plain http on a LAN address) fall back to a hidden textarea.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (e) { /* permission denied: try the fallback */ }
    }
    const ta = doc.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'sr-only';
    doc.body.appendChild(ta);
    const focused = doc.activeElement;
    ta.select();
    let ok = false;
    try { ok = doc.execCommand('copy'); } catch (e) { ok = false; }
    ta.remove();
    if (focused && focused.focus) focused.focus();
    return ok;
  }

  // A polite live region so screen readers hear "Copied" without focus moving.
  let announcer = null;
  function announce(msg) {
    if (!announcer) {
      announcer = doc.createElement('div');
      announcer.className = 'sr-only';
      announcer.setAttribute('role', 'status');
      announcer.setAttribute('aria-live', 'polite');
      doc.body.appendChild(announcer);
    }
    announcer.textContent = '';
    window.setTimeout(() => { announcer.textContent = msg; }, 50);
  }

  const copyTimers = new WeakMap();

  doc.addEventListener('click', async (e) => {
    const btn = e.target.closest('[data-copy]');
    if (!btn) return;
    e.preventDefault();
    const ok = await copyText(btn.dataset.copy || '');

    // Remember the original label once, so repeated clicks restore the right text.
    if (!('copyLabel' in btn.dataset)) btn.dataset.copyLabel = btn.textContent.trim() || 'Copy';
    clearTimeout(copyTimers.get(btn));
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    btn.toggleAttribute('data-copied', ok);
    btn.toggleAttribute('data-copy-failed', !ok);
    announce(ok ? 'Copied to clipboard' : 'Copy failed: select the text and copy it by hand');
    copyTimers.set(btn, window.setTimeout(() => {
      btn.textContent = btn.dataset.copyLabel;
      btn.removeAttribute('data-copied');
      btn.removeAttribute('data-copy-failed');
    }, 1500));
  });

  // ---------------------------------------------------------------------------- relative time

  const absFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
  const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

  // relative returns "12s ago", "5m ago", "3h ago", "2d ago", "in 5m", or a date past 30 days.
  function relative(date, now) {
    const diff = Math.round((date.getTime() - now) / 1000); // seconds; negative = past
    const abs = Math.abs(diff);
    if (abs < 5) return 'just now';
    let n;
    if (abs < 60) n = abs + 's';
    else if (abs < 3600) n = Math.floor(abs / 60) + 'm';
    else if (abs < 86400) n = Math.floor(abs / 3600) + 'h';
    else if (abs < 30 * 86400) n = Math.floor(abs / 86400) + 'd';
    else return dateFormat.format(date);
    return diff < 0 ? n + ' ago' : 'in ' + n;
  }

  // refreshTimes rewrites every time[data-relative] in root (root itself included). The server's
  // absolute text is kept in the tooltip together with the local time.
  function refreshTimes(scope) {
    const base = scope || doc;
    const now = Date.now();
    const list = [];
    if (base.matches && base.matches('time[data-relative]')) list.push(base);
    if (base.querySelectorAll) list.push(...base.querySelectorAll('time[data-relative]'));
    for (const el of list) {
      const iso = el.getAttribute('datetime');
      const date = iso ? new Date(iso) : null;
      if (!date || Number.isNaN(date.getTime())) continue;
      if (!el.hasAttribute('title')) {
        const utc = date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
        el.title = absFormat.format(date) + ' \u00b7 ' + utc;
      }
      const text = relative(date, now);
      if (el.textContent !== text) el.textContent = text;
    }
  }

  window.setInterval(() => refreshTimes(doc), 30000);

  // -------------------------------------------------------------------------------- confirm

  // Capture phase, so the question comes before any other submit handler.
  doc.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    const msg = form.dataset.confirm;
    if (msg === undefined) return;
    if (!window.confirm(msg || 'Are you sure?')) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);

  // -------------------------------------------------------------------------- clickable rows

  doc.addEventListener('click', (e) => {
    const row = e.target.closest('tr.clickable');
    if (!row) return;
    // Real controls inside the row keep their own behaviour; so does selecting text.
    if (e.target.closest('a, button, input, select, textarea, label, summary, [data-copy]')) return;
    const sel = window.getSelection();
    if (sel && String(sel).length > 0) return;
    const link = row.querySelector('a[href]');
    const href = row.dataset.href || (link && link.href);
    if (!href) return;
    if (e.ctrlKey || e.metaKey || e.button === 1) window.open(href, '_blank', 'noopener');
    else window.location.assign(href);
  });

  // ------------------------------------------------------------------------------------ init

  function init() {
    applyTheme(currentTheme());
    refreshTimes(doc);
    const auto = doc.querySelector('[data-autofocus]');
    if (auto && typeof auto.focus === 'function') auto.focus();
  }

  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', init);
  else init();

  // ---------------------------------------------------------------------------------- tables

  // On a phone the CSS turns table rows into blocks, and some screen readers then stop treating
  // the table as one; explicit roles keep its rows, cells and headers. Rows added later (the live
  // feed) get them too.
  function rowRoles(tr) {
    tr.setAttribute('role', 'row');
    for (const c of tr.children) c.setAttribute('role', c.tagName === 'TH' ? 'columnheader' : 'cell');
  }
  for (const table of doc.querySelectorAll('table.table-stack')) {
    table.setAttribute('role', 'table');
    for (const g of table.querySelectorAll(':scope > thead, :scope > tbody')) g.setAttribute('role', 'rowgroup');
    for (const tr of table.querySelectorAll(':scope > thead > tr, :scope > tbody > tr')) rowRoles(tr);
    // Only the rows just added: the feed adds one at a time to a table of hundreds.
    for (const body of table.tBodies) {
      new MutationObserver((records) => {
        for (const m of records) for (const n of m.addedNodes) if (n.tagName === 'TR') rowRoles(n);
      }).observe(body, { childList: true });
    }
  }

  window.dashboard = Object.freeze({ refreshTimes, copyText });
})();
