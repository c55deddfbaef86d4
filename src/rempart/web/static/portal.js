// Rempart portal: the few things a page does in the browser. Served from this origin only (the CSP
// forbids inline scripts). Pages work without it, except the passkey ceremonies (passkeys.js).
"use strict";

(function () {
  // The session's deadlines, shown live: the server ends a session after its idle time and at its
  // absolute end; the page says so before it happens, and says it once it has.
  function sessionClock() {
    const body = document.body;
    const note = document.getElementById("session-note");
    const countdown = document.getElementById("session-countdown");
    if (!body.dataset.idleSeconds || !note || !countdown) return;
    const fr = document.documentElement.lang === "fr";
    // Both counted from the page's arrival, as the server counted them: the computer's clock may be off.
    const idleEnds = Date.now() + Number(body.dataset.idleSeconds) * 1000;
    const absoluteEnds = Date.now() + Number(body.dataset.sessionLeft) * 1000;
    function tick() {
      const ends = Math.min(idleEnds, absoluteEnds);
      const left = Math.round((ends - Date.now()) / 1000);
      if (left <= 0) {
        note.className = "session ended";
        countdown.textContent = fr
          ? "Votre session est terminée : reconnectez-vous avec votre passkey."
          : "Your session has ended: sign in again with your passkey.";
        return;
      }
      if (left <= 120) {
        note.className = "session ending";
        countdown.textContent = fr
          ? "Fin de session dans " + left + " s sans activité."
          : "Session ends in " + left + " s without activity.";
      }
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  // A form is sent once: its buttons are disabled as it leaves, so a double click posts once.
  // (The server holds the same line with the form's idempotency key; this only spares the wait.)
  function sendOnce() {
    document.querySelectorAll("form[method='post']").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        const question = form.dataset.confirm;
        if (question && !window.confirm(question)) {
          event.preventDefault();
          return;
        }
        if (form.dataset.sent) {
          event.preventDefault();
          return;
        }
        form.dataset.sent = "1";
        form.querySelectorAll("button[type='submit']").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    sessionClock();
    sendOnce();
  });
})();
