// Crossway console: the only script besides htmx, loaded from this origin (the CSP allows no inline script).
// htmx requests that change something carry the page's CSRF token as a header too (forms also carry
// it as a field); GET requests never need it.
document.addEventListener("htmx:configRequest", function (event) {
  var field = document.querySelector('input[name="csrf_token"]');
  if (field && event.detail.verb !== "get") {
    event.detail.headers["X-CSRF-Token"] = field.value;
  }
});
