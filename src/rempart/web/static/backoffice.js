// Rempart back office: the live progress bar of a members import. Served from this origin only
// (the CSP forbids inline scripts); without it the <progress> bar is right after each reload.
"use strict";

(function () {
  function importProgress() {
    const box = document.getElementById("import-progress");
    if (!box || !box.dataset.progressUrl) return;
    const bar = document.getElementById("import-bar");
    const counts = document.getElementById("import-counts");
    const finished = document.getElementById("import-finished");
    const reload = document.getElementById("import-reload");
    const fr = document.documentElement.lang === "fr";
    const number = new Intl.NumberFormat(fr ? "fr-FR" : "en-GB");
    function say(p) {
      bar.max = Math.max(p.rows_total, 1);
      bar.value = p.status === "done" ? bar.max : p.rows_done;
      bar.textContent = p.percent + " %";
      const done = number.format(p.rows_done), total = number.format(p.rows_total);
      counts.textContent = fr
        ? done + " lignes sur " + total + " (" + p.percent + " %)"
        : done + " of " + total + " rows (" + p.percent + " %)";
    }
    function poll() {
      fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          // Signed out, refused or gone: the page itself says why once reloaded; no more polling.
          if (r.status >= 400 && r.status < 500) { window.location.reload(); return null; }
          if (!r.ok) throw new Error(String(r.status));
          return r.json();
        })
        .then(function (p) {
          if (p === null) return;
          say(p);
          if (p.finished) {
            if (reload) reload.hidden = true;
            if (finished) finished.hidden = false;
            window.location.reload();
            return;
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  }
  document.addEventListener("DOMContentLoaded", importProgress);
})();
