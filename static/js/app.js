// Small behaviours shared by every page. No inline scripts: the CSP allows only our files.
(function () {
  // One way to show a refused htmx request on every page: a fragment answered with an error
  // (a 400 names the parameter that does not parse) is not swapped in; its text goes in the
  // page's error line, which the next successful swap hides.
  document.body.addEventListener("htmx:responseError", (e) => {
    const box = document.getElementById("htmx-error");
    if (!box) return;
    const text = (e.detail.xhr.responseText || "").trim();
    box.textContent = e.detail.xhr.status === 400 && text && text.length < 2000 ? text : "The request failed (" + e.detail.xhr.status + ").";
    box.hidden = false;
  });
  document.body.addEventListener("htmx:afterSwap", () => {
    const box = document.getElementById("htmx-error");
    if (box) box.hidden = true;
  });

  // "?" (or the header's "Keys ?" button) opens the list of this page's keys (base.html, each
  // page's {% block keys %}); Esc closes it (a <dialog>).
  function toggleKeys() {
    const help = document.getElementById("keys-help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-keys-help]")) toggleKeys();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "?" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest && e.target.closest("input, textarea, select, [contenteditable]")) return;
    e.preventDefault();
    toggleKeys();
  });

  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.matches("form.confirm") && !window.confirm(form.dataset.confirm || "Are you sure?")) e.preventDefault();
  });
})();
