// Progressive enhancement only: every page works without this script.
// It tells the server the viewer's UTC offset (a cookie read when the URL has no tz), so that
// times show in the viewer's time zone.
(function () {
  var minutes = -new Date().getTimezoneOffset();
  var sign = minutes >= 0 ? "+" : "-";
  var abs = Math.abs(minutes);
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  var tz = sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  var had = document.cookie.split("; ").some(function (c) { return c === "rollcall_tz=" + tz; });
  document.cookie = "rollcall_tz=" + tz + "; path=/; SameSite=Strict; max-age=31536000";
  var url = new URL(window.location.href);
  if (!had && !url.searchParams.has("tz") && document.querySelector("[data-reload-for-tz]")) {
    window.location.reload();
  }
})();

// Entering a From or To date selects the Custom range; choosing another range clears them.
(function () {
  var range = document.getElementById("range");
  if (!range) { return; }
  ["from", "to"].forEach(function (id) {
    var input = document.getElementById(id);
    if (!input) { return; }
    input.addEventListener("input", function () { if (input.value) { range.value = "custom"; } });
    input.addEventListener("change", function () { if (input.value) { range.value = "custom"; } });
  });
  range.addEventListener("change", function () {
    if (range.value !== "custom") {
      ["from", "to"].forEach(function (id) {
        var input = document.getElementById(id);
        if (input) { input.value = ""; }
      });
    }
  });
})();

// A page showing a Queued or In Progress run reloads itself every 5 seconds, unless the
// viewer is busy with a form or an open menu (then it waits for the next turn).
(function () {
  if (!document.querySelector("[data-live]")) { return; }
  var tick = function () {
    var busy = document.querySelector("details[open]") ||
      (document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName));
    if (busy) { window.setTimeout(tick, 5000); } else { window.location.reload(); }
  };
  window.setTimeout(tick, 5000);
})();
