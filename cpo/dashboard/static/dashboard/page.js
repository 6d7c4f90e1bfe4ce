// What every page does without inline script (the Content-Security-Policy forbids it):
// - the menu button folds the navigation on narrow screens;
// - a form with data-confirm asks before it is sent. "{field}" in the text is replaced by the label of that field's
//   selected option; data-confirm-if="field=value" asks only when that field has that value.
(function () {
  "use strict";
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("main-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = !nav.classList.contains("open");
      nav.classList.toggle("open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function fieldText(form, name) {
    var field = form.elements[name];
    if (!field) return "";
    if (field.options && field.selectedIndex >= 0) return field.options[field.selectedIndex].text;
    return field.value;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    var condition = form.dataset.confirmIf;
    if (condition) {
      var parts = condition.split("=");
      var field = form.elements[parts[0]];
      if (!field || field.value !== parts[1]) return;
    }
    var text = form.dataset.confirm.replace(/\{([\w-]+)\}/g, function (_, name) { return fieldText(form, name); });
    if (!window.confirm(text)) event.preventDefault();
  });
})();
