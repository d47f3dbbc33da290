// scalr-queue dashboard: confirmations for actions, and the live part of each page refreshed by a
// short poll of the same URL with ?partial=live (server-rendered, already escaped HTML).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  var live = document.getElementById("live");
  var every = Number(document.body.getAttribute("data-refresh") || 0);
  if (!live || !(every > 0)) {
    return;
  }
  var busy = false;
  window.setInterval(function () {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "live");
    window.fetch(url.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* Redis or the server is away: try again on the next tick */ })
      .then(function () { busy = false; });
  }, every * 1000);
})();
