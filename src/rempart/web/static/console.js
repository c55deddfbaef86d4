// Rempart security console: new alerts reach an open page without a reload. Served from this origin
// only (the CSP forbids inline scripts). Without it, the page shows the new alerts on reload.
"use strict";

(function () {
  const EVERY_MS = 3000;

  function liveAlerts() {
    const table = document.getElementById("alerts");
    const rows = document.getElementById("alert-rows");
    const live = document.getElementById("alerts-live");
    if (!table || !rows || !table.dataset.poll) return;
    let after = table.dataset.after || "";
    let stopped = false;
    // Each poll is a request, which the server counts as activity: without a limit an open console
    // would never reach its idle timeout. So it polls only while the operator is there: it stops
    // once the person has not touched the page for the session's idle time (and a reload resumes).
    const idleMs = Number(document.body.dataset.idleSeconds || 900) * 1000;
    let lastTouched = Date.now();
    ["pointerdown", "keydown", "scroll", "focusin"].forEach(function (name) {
      window.addEventListener(name, function () { lastTouched = Date.now(); }, { passive: true });
    });

    function shown(id) {
      return rows.querySelector("tr[data-alert-id='" + id + "']") !== null;
    }

    function insert(html) {
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const template = holder.querySelector("template#new-alert-rows");
      if (!template) return 0;
      const all = template.content.querySelectorAll("tr[data-alert-id]");
      // The fragment is newest first: its first row is the newest alert there is.
      if (all.length) after = all[0].dataset.created;
      const fresh = Array.prototype.filter.call(all, function (row) { return !shown(row.dataset.alertId); });
      if (!fresh.length) return 0;
      const empty = rows.querySelector("tr.empty");
      if (empty) empty.remove();
      // Above the rows shown, newest on top.
      for (let i = fresh.length - 1; i >= 0; i -= 1) {
        const row = document.importNode(fresh[i], true);
        row.classList.add("fresh");
        rows.insertBefore(row, rows.firstChild);
      }
      return fresh.length;
    }

    function poll() {
      if (Date.now() - lastTouched >= idleMs) stopped = true;
      if (stopped) return;
      const url = table.dataset.poll + (after ? "?after=" + encodeURIComponent(after) : "");
      fetch(url, { credentials: "same-origin", redirect: "manual", headers: { Accept: "text/html" } })
        .then(function (response) {
          // Signed out, or the role changed: stop asking; a reload shows why.
          if (!response.ok) { stopped = true; return null; }
          return response.text();
        })
        .then(function (html) {
          if (html === null) return;
          const count = insert(html);
          if (count && live) live.textContent = (table.dataset.newWords || "") + " " + count;
        })
        .catch(function () { /* the network blinked: the next round tries again */ })
        .finally(function () {
          if (!stopped) window.setTimeout(poll, EVERY_MS);
        });
    }

    window.setTimeout(poll, EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", liveAlerts);
})();
