// theme.js: applies the saved colour theme before the first paint, so a dark-theme user never
// sees a white flash. Load it in <head>, without defer/async:
//   <script src="/static/js/theme.js" nonce="..."></script>
// 'light' or 'dark' goes on <html data-theme>; no value means "follow the OS" (CSS media query).
// The toggle button itself is handled in app.js.
(function () {
  'use strict';
  // "js" on <html> tells the CSS that scripts run (the narrow-screen menu is a drawer only then).
  document.documentElement.classList.add('js');
  try {
    var t = window.localStorage.getItem('theme');
    if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  } catch (e) {
    // Storage can be unavailable (privacy mode, disabled cookies): keep the OS default.
  }
})();
