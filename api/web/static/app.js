// Voisin dashboard: live updates by polling. Every few seconds the page asks /ui/live for a
// short stamp; when it changes, the page fetches itself again and swaps in the sections marked
// data-live (never one the reader is typing in), then says when it was refreshed.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live-url");
  if (!url || !window.fetch || !window.DOMParser) { return; }
  var POLL_MS = 3000;
  var stamp = null;
  var status = document.getElementById("live-status");
  var label = { fr: "En direct : mis à jour à", en: "Live: refreshed at" }[document.documentElement.lang] || "Live";

  function busy(section) {
    var active = document.activeElement;
    return active && active !== document.body && section.contains(active) &&
      (active.tagName === "INPUT" || active.tagName === "SELECT");
  }

  function refresh() {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (section) {
          var next = fresh.getElementById(section.id);
          if (next && !busy(section) && !section.querySelector("[aria-invalid]")) {
            section.innerHTML = next.innerHTML;
          }
        });
        if (status) { status.textContent = label + " " + new Date().toLocaleTimeString(); }
      });
  }

  function poll() {
    fetch("/ui/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/"); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body) { return; }
        var changed = stamp !== null && body.stamp !== stamp;
        stamp = body.stamp;
        return changed ? refresh() : null;
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }
  poll();
}());
