// Small enhancements only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes for bulk actions.
  document.querySelectorAll("input[data-select-all]").forEach((all) => {
    all.addEventListener("change", () => {
      document.querySelectorAll(`input[name="${all.dataset.selectAll}"]`).forEach((box) => {
        box.checked = all.checked;
      });
    });
  });
  // Ask before a destructive action.
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    el.addEventListener("click", (event) => {
      if (!window.confirm(el.dataset.confirm)) event.preventDefault();
    });
  });
  // Copy buttons next to webhook URLs and secrets.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.copy);
      if (source && navigator.clipboard) navigator.clipboard.writeText(source.textContent.trim());
    });
  });
  // Long work (uploads, bulk actions): show progress while the server works; the form
  // itself is submitted as usual.
  document.querySelectorAll("form[data-progress]").forEach((form) => {
    form.addEventListener("submit", () => {
      const bar = document.getElementById(form.dataset.progress);
      if (bar) bar.hidden = false;
    });
  });
});
