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
