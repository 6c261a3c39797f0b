// The inbox's behaviour (a file, not inline: the CSP refuses inline scripts): the thread kept at its
// newest message, canned replies put into the reply box, keyboard shortcuts, and the opt-in browser
// notification when a customer starts waiting for a person.
(function () {
  "use strict";
  var NOTIFY_KEY = "inbox-notify";

  // --- the thread opens, and stays, at its newest message (unless staff scrolled up to read) ---
  var stickToBottom = true;
  function thread() { return document.getElementById("thread"); }
  function toBottom() {
    var el = thread();
    if (el) el.scrollTop = el.scrollHeight;
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var el = thread();
    if (el && event.detail.target === el) stickToBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  });

  // --- the waiting counter in the navigation, and the notification when it grows ---
  function waitingCount() {
    var el = document.querySelector("[data-waiting-count]");
    return el ? parseInt(el.dataset.waitingCount || "0", 10) || 0 : 0;
  }
  var lastWaiting = waitingCount();

  function notifyOn() {
    return "Notification" in window && Notification.permission === "granted" &&
      window.localStorage.getItem(NOTIFY_KEY) === "on";
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target === thread() && stickToBottom) toBottom();
    if (target && target.dataset && target.dataset.live === "waiting") {
      var now = waitingCount();
      if (now > lastWaiting && notifyOn()) {
        var el = document.querySelector("[data-waiting-count]");
        try {
          new Notification(el.dataset.notifyText || "Waiting", { tag: "inbox-waiting", body: String(now) });
        } catch (err) { /* some browsers only notify from a service worker: the badge still shows it */ }
      }
      lastWaiting = now;
    }
  });

  function setupNotifyButton() {
    var button = document.querySelector("[data-notify-toggle]");
    if (!button || !("Notification" in window)) return;
    button.hidden = false;
    function show() {
      if (Notification.permission === "denied") {
        button.textContent = button.dataset.deniedText;
        button.disabled = true;
      } else if (notifyOn()) {
        button.textContent = button.dataset.onText;
        button.setAttribute("aria-pressed", "true");
      }
    }
    button.addEventListener("click", function () {
      if (notifyOn()) return;
      Notification.requestPermission().then(function (answer) {
        if (answer === "granted") window.localStorage.setItem(NOTIFY_KEY, "on");
        show();
      });
    });
    show();
  }

  // --- canned replies go into the reply box, variables already filled in by the server ---
  document.addEventListener("click", function (event) {
    var pick = event.target.closest ? event.target.closest("[data-insert]") : null;
    if (!pick) return;
    var box = document.getElementById("reply-body");
    if (!box) return;
    var start = box.selectionStart || 0;
    var end = box.selectionEnd || 0;
    box.value = box.value.slice(0, start) + pick.dataset.insert + box.value.slice(end);
    box.focus();
    var caret = start + pick.dataset.insert.length;
    box.setSelectionRange(caret, caret);
  });

  // --- keyboard shortcuts ---
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function moveRow(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-row-link]"));
    if (!links.length) return;
    var current = links.findIndex(function (a) { return a.getAttribute("aria-current") === "true"; });
    var next = links[Math.min(Math.max(current + step, 0), links.length - 1)];
    if (current === -1) next = links[0];
    if (next) window.location.assign(next.href);
  }
  function focusShortcut(key) {
    var el = document.querySelector('[data-shortcut="' + key + '"]');
    if (!el) return false;
    var details = el.closest("details");
    if (details) details.open = true;
    el.focus();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    var el = document.activeElement;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && el && el.tagName === "TEXTAREA" && el.form) {
      event.preventDefault();
      if (el.form.reportValidity()) el.form.requestSubmit();
      return;
    }
    if (event.key === "Escape" && typing(el)) { el.blur(); return; }
    if (typing(el) || event.ctrlKey || event.metaKey || event.altKey) return;
    var handled = true;
    switch (event.key) {
      case "j": moveRow(1); break;
      case "k": moveRow(-1); break;
      case "/": case "r": case "n": case "c": handled = focusShortcut(event.key); break;
      case "a": {
        var button = document.querySelector('[data-shortcut-click="a"]');
        if (button) button.click(); else handled = false;
        break;
      }
      case "?": {
        var help = document.querySelector("[data-shortcuts-help]");
        if (help) { help.open = !help.open; help.scrollIntoView({ block: "nearest" }); } else handled = false;
        break;
      }
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  function start() {
    toBottom();
    setupNotifyButton();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
