// Voisin dashboard: live updates by polling. Every few seconds the page asks /ui/live for a
// short stamp (for the operator it also covers the audit and power flows the keeper kept);
// when it changes, the page fetches itself again and swaps in the sections marked
// data-live (never one the reader is typing in), then says when it was refreshed.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live-url");
  // The market's prefix ("" at the server's root, "/markets/<name>" in a city).
  var root = document.body.getAttribute("data-root") || "";
  if (!url || !window.fetch || !window.DOMParser) { return; }
  var POLL_MS = 3000;
  // The stamp the page was rendered with: a change made while it was on its way shows at the
  // first poll.
  var stamp = document.body.getAttribute("data-live-stamp");
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
    fetch(root + "/ui/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign(root + "/"); return null; }
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

// Operator page: copy buttons for meter addresses (shown only where this script runs, so no
// dead button without it). One listener on the document serves the rows the live refresh
// swaps in too.
(function () {
  "use strict";
  if (!document.querySelector("[data-live-url$='/ui/operator']")) { return; }
  document.documentElement.classList.add("op-copying");

  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    var copying = navigator.clipboard && window.isSecureContext ?
      navigator.clipboard.writeText(text).catch(function () { return fallback(text); }) :
      fallback(text);
    copying.then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-done") || label;
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
}());
