// Live updates: a WebSocket says which events happened; htmx re-fetches the server-rendered
// fragment they touch (so every customer text on screen is escaped by the server's templates).
(function () {
  "use strict";
  var body = document.body;
  var path = body.dataset.liveUrl;
  if (!path || !("WebSocket" in window)) return;

  var lastId = parseInt(body.dataset.liveAfter || "0", 10) || 0;
  var retryDelay = 1000;
  var failures = 0;
  var pollTimer = null;
  var dirty = new Set();
  var flushTimer = null;
  var status = document.querySelector("[data-live-status]");

  function socketUrl() {
    var url = new URL(path, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : url.protocol === "http:" ? "ws:" : url.protocol;
    url.searchParams.set("after", String(lastId));
    return url.toString();
  }

  function showStatus(text) {
    if (!status) return;
    status.hidden = !text;
    status.textContent = text || "";
  }

  function concerns(el, event) {
    var kind = el.dataset.live;
    if (kind === "inbox") return event.conversation_id !== null;
    if (kind === "queue") return event.kind === "message" || event.kind === "status";
    if (kind === "alerts") return event.kind === "alert";
    if (kind === "whatsapp_web") return event.kind === "web_session";
    if (kind === "thread") return String(event.conversation_id) === el.dataset.conversationId;
    if (kind === "conversation-head") {
      return event.kind === "conversation" && String(event.conversation_id) === el.dataset.conversationId;
    }
    if (kind === "waiting") return event.kind === "conversation";
    // A campaign's funnel moves with its steps and with every status webhook (bursts become one fetch).
    if (kind === "campaign") {
      if (event.kind === "status") return true;
      return event.kind === "campaign" && String((event.payload || {}).campaign_id) === el.dataset.campaignId;
    }
    return false;
  }

  function flush() {
    flushTimer = null;
    dirty.forEach(function (el) {
      if (window.htmx && document.body.contains(el)) window.htmx.trigger(el, "live-refresh");
    });
    dirty.clear();
  }

  function handle(event) {
    if (typeof event.id === "number" && event.id > lastId) lastId = event.id;
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (concerns(el, event)) dirty.add(el);
    });
    // Several events in a burst become one request per fragment.
    if (dirty.size && !flushTimer) flushTimer = window.setTimeout(flush, 250);
  }

  function refreshAll() {
    document.querySelectorAll("[data-live]").forEach(function (el) { dirty.add(el); });
    flush();
  }

  function startPolling() {
    // Without the socket (no ws process reachable) the page still follows, only more slowly.
    if (!pollTimer) pollTimer = window.setInterval(refreshAll, 5000);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    socket.onopen = function () {
      retryDelay = 1000;
      failures = 0;
      stopPolling();
      showStatus("");
    };
    socket.onmessage = function (message) {
      try {
        handle(JSON.parse(message.data));
      } catch (err) { /* a malformed frame is skipped; the next event catches up */ }
    };
    socket.onclose = function (closing) {
      if (closing.code === 4401 || closing.code === 4403) return; // not allowed: retrying will not help
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    failures += 1;
    if (failures >= 2) {
      startPolling();
      showStatus(body.dataset.liveOfflineText || "Reconnecting…");
    }
    var jitter = Math.random() * 0.3 * retryDelay;
    window.setTimeout(connect, retryDelay + jitter);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  connect();
})();
