// Veil web UI: the only script. Progressive enhancement; every page works without it.
// A revealed value is hidden again after `data-hide-after` seconds (the reveal is already audited; this only
// limits how long it stays on screen).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".revealed[data-hide-after]").forEach(function (element) {
    var seconds = parseInt(element.getAttribute("data-hide-after"), 10);
    if (!(seconds > 0)) { return; }
    window.setTimeout(function () {
      element.textContent = element.getAttribute("data-masked") + " (" + element.getAttribute("data-hidden-label") + ")";
      element.classList.add("gone");
    }, seconds * 1000);
  });
});
