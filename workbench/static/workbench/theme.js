// Loaded in <head> (not deferred) so the chosen theme applies before the first paint.
(function () {
  try {
    var theme = localStorage.getItem("workbench-theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage disabled: follow the system */ }
})();
// The browser's time zone, for the server to show and read times in it until the user picks one
// in their profile (accounts.middleware.TimeZoneMiddleware).
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("wb_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "wb_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: the server's zone */ }
})();
