// Small behaviours shared by every page. No inline scripts: the CSP allows only our files.
(function () {
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.matches("form.confirm") && !window.confirm(form.dataset.confirm || "Are you sure?")) e.preventDefault();
  });
})();
