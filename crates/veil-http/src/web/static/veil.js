// Veil web UI: the only script. Progressive enhancement; every page works without it.
"use strict";

// A revealed value is hidden again after `data-hide-after` seconds (the reveal is already audited; this only
// limits how long it stays on screen).
function hideRevealedValues() {
  document.querySelectorAll(".revealed[data-hide-after]").forEach(function (element) {
    var seconds = parseInt(element.getAttribute("data-hide-after"), 10);
    if (!(seconds > 0)) { return; }
    window.setTimeout(function () {
      element.textContent = element.getAttribute("data-masked") + " (" + element.getAttribute("data-hidden-label") + ")";
      element.classList.add("gone");
    }, seconds * 1000);
  });
}

// Shows the server's live evaluation (JSON) in the panel. Text only: nothing from the answer becomes markup.
function showChecks(panel, result) {
  panel.hidden = false;
  panel.querySelector(".live-summary").textContent = result.summary;
  var errors = panel.querySelector(".live-errors");
  errors.replaceChildren();
  result.errors.forEach(function (text) {
    var item = document.createElement("li");
    item.textContent = text;
    errors.appendChild(item);
  });
  var list = panel.querySelector(".checks");
  list.replaceChildren();
  result.checks.forEach(function (check) {
    var item = document.createElement("li");
    item.className = check.met ? "met" : "unmet";
    item.setAttribute("data-check", check.name);
    var mark = document.createElement("span");
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = check.met ? "✓" : "✗";
    item.appendChild(mark);
    item.appendChild(document.createTextNode(" " + check.label + " — " + check.status));
    if (check.reason) {
      item.appendChild(document.createElement("br"));
      var reason = document.createElement("span");
      reason.className = "hint";
      reason.textContent = check.reason;
      item.appendChild(reason);
    }
    list.appendChild(item);
  });
}

// The unmask request form's prerequisite checks, recomputed by the server (without creating a request) a moment
// after each change. The form's own CSRF field travels with it. If anything fails, the panel simply stays as it
// was: submitting the form still shows the evaluation.
function liveChecks(form) {
  var panel = document.getElementById(form.getAttribute("data-live-checks"));
  var url = form.getAttribute("data-check-url");
  if (!panel || !url || !window.fetch) { return; }
  var timer = null;
  var latest = 0;
  var refresh = function () {
    var sent = ++latest;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      if (!response.ok) { throw new Error("live checks unavailable: " + response.status); }
      return response.json();
    }).then(function (result) {
      if (sent === latest) { showChecks(panel, result); }
    }).catch(function () { /* the submit flow still works */ });
  };
  var schedule = function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 300);
  };
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  refresh();
}

// The deal board: dragging a card onto another column chooses that stage in the card's own move form and submits
// it, so a drop is exactly the keyboard path (same form, same CSRF token, same version check on the server).
function dealBoard(board) {
  var dragged = null;
  board.querySelectorAll(".deal-card[draggable]").forEach(function (card) {
    card.addEventListener("dragstart", function (event) {
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-deal"));
    });
    card.addEventListener("dragend", function () {
      card.classList.remove("dragging");
      dragged = null;
    });
  });
  board.querySelectorAll(".column[data-stage]").forEach(function (column) {
    column.addEventListener("dragover", function (event) {
      if (dragged) { event.preventDefault(); column.classList.add("drop-target"); }
    });
    column.addEventListener("dragleave", function () { column.classList.remove("drop-target"); });
    column.addEventListener("drop", function (event) {
      event.preventDefault();
      column.classList.remove("drop-target");
      if (!dragged || dragged.closest(".column") === column) { return; }
      var form = dragged.querySelector("form.move");
      var select = form && form.querySelector("select[name=stage]");
      if (!select) { return; }
      select.value = column.getAttribute("data-stage");
      form.submit();
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  hideRevealedValues();
  document.querySelectorAll("[data-board]").forEach(dealBoard);
  document.querySelectorAll("form[data-live-checks]").forEach(liveChecks);
});
