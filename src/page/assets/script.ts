/**
 * The page's only script, served from the package under the mount path (`script-src 'self'`, never
 * inline). It only improves what already works without it: every form posts and every confirmation
 * has a page of its own.
 *
 * - `[data-copy="<id>"]` buttons (hidden until this runs) copy the text of element `<id>` and say so
 *   in the live region; where the clipboard is refused, the text is selected instead.
 * - `form[data-confirm="<dialog id>"]` opens that `<dialog>` as a modal instead of going to the
 *   confirmation page. The dialog's own form posts the action; its "Cancel" is a `method="dialog"`
 *   form, which closes it without script.
 */
export const SCRIPT = `'use strict';
(function () {
  var live = document.getElementById('kw-live');
  function announce(text) {
    if (!live) return;
    live.textContent = '';
    // A fresh text node after a tick, so a screen reader announces the same words twice in a row.
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  document.querySelectorAll('[data-copy]').forEach(function (button) {
    var target = document.getElementById(button.getAttribute('data-copy'));
    if (!target) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      var text = target.textContent.trim();
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        announce('The key is selected: press Ctrl+C (or Command+C) to copy it.');
      };
      if (!navigator.clipboard || !window.isSecureContext) return select();
      navigator.clipboard.writeText(text).then(function () {
        announce('Copied to the clipboard.');
      }, select);
    });
  });

  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    var dialog = document.getElementById(form.getAttribute('data-confirm'));
    if (!dialog || typeof dialog.showModal !== 'function') return;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      dialog.showModal();
    });
  });
})();
`
