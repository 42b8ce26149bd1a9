// Loaded in <head> (not deferred) so the chosen theme applies before the first paint.
(function () {
  try {
    var theme = localStorage.getItem("workbench-theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage disabled: follow the system */ }
})();
