// The platform's side of the WhatsApp Web bridge, injected after wa-js (window.WPP; written against
// @wppconnect/wa-js 4.6.0, deploy/wa-js/). It uses only wa-js's public API (WPP.on, WPP.isReady,
// WPP.conn.*, WPP.chat.*) and reports to worker-web through the binding
// window.__chatbotEmit (Playwright's expose_binding). worker-web calls window.__chatbotBridge.run().
(() => {
  if (window.__chatbotBridge) return;
  const emit = (event) => {
    try {
      window.__chatbotEmit(event);
    } catch (e) {
      // The binding is gone only while the page unloads; worker-web re-reads the state after a reload.
    }
  };
  const wid = (value) => (value && (value._serialized || String(value))) || "";
  const STREAM_MODES = {
    CONFLICT: "conflict",
    TOS_BLOCK: "blocked",
    SMB_TOS_BLOCK: "blocked",
    PROXYBLOCK: "blocked",
    DEPRECATED_VERSION: "outdated",
    OFFLINE: "disconnected",
  };
  const bridge = { state: "starting", qr: "", detail: "" };
  const setState = (state, extra) => {
    bridge.state = state;
    bridge.qr = (extra && extra.qr) || "";
    bridge.detail = (extra && extra.detail) || "";
    emit({ kind: "state", state, qr: bridge.qr, detail: bridge.detail, version: version() });
  };
  const version = () => (window.Debug && window.Debug.VERSION) || "";

  const message = (msg) => ({
    id: wid(msg.id),
    from: wid(msg.from),
    fromMe: Boolean(msg.id && msg.id.fromMe),
    isGroup: wid(msg.from).endsWith("@g.us"),
    isStatus: wid(msg.from) === "status@broadcast",
    type: msg.type || "",
    body: msg.type === "chat" || msg.type === "vcard" || msg.type === "location" ? msg.body || "" : "",
    caption: msg.caption || "",
    mimetype: msg.mimetype || "",
    filename: msg.filename || "",
    size: msg.size || 0,
    lat: msg.lat,
    lng: msg.lng,
    t: msg.t || Math.floor(Date.now() / 1000),
    notifyName: msg.notifyName || "",
    quotedMsgId: msg.quotedStanzaID ? wid(msg.quotedMsgId || "") : "",
  });

  function init() {
    WPP.on("conn.auth_code_change", (code) => {
      if (code && code.fullCode) setState("qr", { qr: code.fullCode });
    });
    WPP.on("conn.require_auth", () => setState("qr", { qr: bridge.qr }));
    WPP.on("conn.authenticated", () => setState("syncing"));
    WPP.on("conn.main_loaded", () => setState("syncing"));
    WPP.on("conn.main_ready", () => setState("connected"));
    WPP.on("conn.logout", () => setState("logged_out"));
    WPP.on("conn.stream_mode_changed", (mode) => {
      if (STREAM_MODES[mode]) setState(STREAM_MODES[mode], { detail: String(mode) });
      else if (mode === "MAIN" && WPP.conn.isMainReady()) setState("connected");
    });
    WPP.on("chat.new_message", (msg) => emit({ kind: "message", message: message(msg) }));
    // Receipts of our sends: 1 sent (the server has it), 2 delivered, 3 read, 4 played, -1 failed.
    WPP.on("chat.msg_ack_change", (change) =>
      emit({
        kind: "ack",
        ack: change.ack,
        ids: (change.ids || []).map(wid).filter((id) => id.startsWith("true_")),
        t: Math.floor(Date.now() / 1000),
      }),
    );
    WPP.on("chat.new_reaction", (reaction) =>
      emit({
        kind: "message",
        message: {
          id: wid(reaction.id),
          from: wid(reaction.sender),
          type: "reaction",
          body: reaction.reactionText || "",
          reactionTo: wid(reaction.msgId),
          t: seconds(reaction.timestamp),
        },
      }),
    );
    if (WPP.conn.isMainReady()) setState("connected");
    else if (WPP.conn.isAuthenticated()) setState("syncing");
    else {
      const code = WPP.conn.getAuthCode && WPP.conn.getAuthCode();
      Promise.resolve(code).then((c) => setState("qr", { qr: (c && c.fullCode) || "" }));
    }
  }

  // wa-js gives some times in seconds, others in milliseconds.
  const seconds = (value) =>
    !value ? Math.floor(Date.now() / 1000) : value > 1e12 ? Math.floor(value / 1000) : Math.floor(value);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const ops = {
    // Seen, typing for `typing_ms`, then the text. `stage` tells worker-web how far it got if it fails:
    // only a failure before "sending" proves the message did not leave.
    async send({ chat, body, typing_ms }, progress) {
      if (!WPP.conn.isMainReady()) return { ok: false, error: "not connected" };
      progress.stage = "seen";
      await WPP.chat.markIsRead(chat);
      progress.stage = "typing";
      await WPP.chat.markIsComposing(chat, typing_ms);
      await sleep(typing_ms);
      progress.stage = "sending";
      const sent = await WPP.chat.sendTextMessage(chat, body, { createChat: false });
      await WPP.chat.markIsPaused(chat);
      return { ok: true, id: wid(sent.id) };
    },
    // A file (image, video, audio, document) from its data URL: seen, then typing (recording for audio)
    // as for a text, then the file with its caption (and name, for a document).
    async send_file({ chat, kind, data_url, mimetype, caption, filename, typing_ms }, progress) {
      if (!WPP.conn.isMainReady()) return { ok: false, error: "not connected" };
      progress.stage = "seen";
      await WPP.chat.markIsRead(chat);
      progress.stage = "typing";
      if (kind === "audio") await WPP.chat.markIsRecording(chat, typing_ms);
      else await WPP.chat.markIsComposing(chat, typing_ms);
      await sleep(typing_ms);
      progress.stage = "sending";
      const options = { type: kind, mimetype, createChat: false };
      if (caption) options.caption = caption;
      if (kind === "document") options.filename = filename;
      const sent = await WPP.chat.sendFileMessage(chat, data_url, options);
      await WPP.chat.markIsPaused(chat);
      return { ok: true, id: wid(sent.id) };
    },
    // A received message's file, base64 (it crosses to worker-web as text), refused above `max_bytes`.
    async media({ id, max_bytes }) {
      const blob = await WPP.chat.downloadMedia(id);
      if (blob.size > max_bytes) return { ok: false, permanent: true, error: `larger than ${max_bytes} bytes` };
      const url = await new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(String(reader.result));
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      });
      return { ok: true, mimetype: blob.type || "", size: blob.size, data: url.slice(url.indexOf(",") + 1) };
    },
    // The unread messages of the chats with unread ones (WhatsApp Web's order, most recent chat first),
    // at most `max_chats` chats and `max_messages` per chat, oldest first: what arrived while no
    // worker-web was watching. Storing them is idempotent (WhatsApp's ids), so a repeat costs nothing.
    async catch_up({ max_chats, max_messages }) {
      const chats = (await WPP.chat.list({ onlyUsers: true, onlyWithUnreadMessage: true })).slice(0, max_chats);
      const found = [];
      for (const chat of chats) {
        const msgs = await WPP.chat.getMessages(wid(chat.id), { count: max_messages, onlyUnread: true });
        msgs.filter((m) => !(m.id && m.id.fromMe)).forEach((m) => found.push(message(m)));
      }
      found.sort((a, b) => a.t - b.t);
      return { ok: true, chats: chats.length, messages: found };
    },
    async seen({ chat }) {
      await WPP.chat.markIsRead(chat);
      return { ok: true };
    },
    async pair({ phone }) {
      return { ok: true, code: await WPP.conn.genLinkDeviceCodeForPhoneNumber(phone) };
    },
    async logout() {
      await WPP.conn.logout();
      return { ok: true };
    },
  };

  window.__chatbotBridge = {
    snapshot: () => ({ state: bridge.state, qr: bridge.qr, detail: bridge.detail, version: version() }),
    async run(op, args) {
      const progress = { stage: "" };
      if (!ops[op]) return { ok: false, permanent: true, error: `unknown op ${op}` };
      const timeout = new Promise((resolve, reject) =>
        setTimeout(() => reject(new Error(`${op} timed out`)), args.timeout_ms || 60000),
      );
      try {
        return await Promise.race([ops[op](args, progress), timeout]);
      } catch (e) {
        return { ok: false, error: String((e && e.message) || e), sent_maybe: progress.stage === "sending" };
      }
    },
  };
  if (WPP.isReady) init();
  else WPP.on("loader.ready", init);
})();
