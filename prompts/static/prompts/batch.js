// New batch page: "Add row" copies the table's last row (emptied, next index), and picking
// another version reloads the page so the table has that version's columns.

const table = document.getElementById("rows-table");
const addRow = document.getElementById("add-row");

if (table && addRow) {
  addRow.addEventListener("click", () => {
    const body = table.tBodies[0];
    const last = body.rows[body.rows.length - 1];
    if (!last) return;
    const index = body.rows.length;
    const row = last.cloneNode(true);
    row.querySelector(".row-number").textContent = String(index + 1);
    row.querySelectorAll("input, textarea, select").forEach((field) => {
      field.name = field.name.replace(/^row-\d+-/, `row-${index}-`);
      const label = field.getAttribute("aria-label");
      if (label) field.setAttribute("aria-label", label.replace(/row \d+$/, `row ${index + 1}`));
      if (field.tagName === "SELECT") field.selectedIndex = 0;
      else field.value = "";
    });
    body.append(row);
    const first = row.querySelector("input, textarea, select");
    if (first) first.focus();
  });
}

const version = document.getElementById("id_version");
if (version) {
  version.addEventListener("change", () => {
    const url = new URL(window.location.href);
    url.searchParams.set("version", version.value);
    window.location.assign(url.toString());
  });
}
