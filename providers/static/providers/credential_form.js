// Add-provider form: picking a provider sets "Local (calls cost $0)" to that provider's default.
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-preset-form]");
  if (!form || event.target.name !== "preset" || !form.dataset.localPresets) return;
  const local = form.querySelector("[name=is_local]");
  if (local) local.checked = form.dataset.localPresets.split(",").includes(event.target.value);
});
