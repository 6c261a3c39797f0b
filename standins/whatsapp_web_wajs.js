// A stand-in of the wa-js bundle for the stand-in of WhatsApp Web (standins/whatsapp_web.py): the same
// `WPP` surface the platform's adapter uses (WPP.on, WPP.conn.*, WPP.chat.*), backed by the stand-in
// server instead of WhatsApp's own modules. It polls the server for what "the phone" and "the
// customers" do, and posts what the page sends.
(() => {
  if (window.WPP) return;
  const listeners = {};
  const state = { authenticated: false, mainReady: false, authCode: null };
  const emit = (name, value) => (listeners[name] || []).forEach((fn) => fn(value));
  const post = (path, body) =>
    fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).then(
      (r) => r.json(),
    );
  const wid = (s) => ({ _serialized: s, toString: () => s });
  const chatIds = new Set();
  const asMsg = (m) => ({ ...m, id: { _serialized: m.id, fromMe: false, remote: wid(m.from) }, from: wid(m.from) });

  const apply = (event) => {
    if (event.type === "qr") {
      state.authenticated = state.mainReady = false;
      state.authCode = { type: "qr", ref: event.ref, fullCode: event.code };
      emit("conn.require_auth");
      emit("conn.auth_code_change", state.authCode);
    } else if (event.type === "linked") {
      state.authenticated = true;
      state.authCode = null;
      emit("conn.authenticated");
      emit("conn.main_loaded");
      state.mainReady = true;
      emit("conn.main_ready");
      emit("conn.stream_mode_changed", "MAIN");
    } else if (event.type === "logout") {
      state.authenticated = state.mainReady = false;
      emit("conn.logout");
    } else if (event.type === "mode") {
      if (event.mode !== "MAIN") state.mainReady = false;
      else state.mainReady = state.authenticated;
      emit("conn.stream_mode_changed", event.mode);
    } else if (event.type === "message") {
      chatIds.add(event.message.from);
      emit("chat.new_message", asMsg(event.message));
    } else if (event.type === "hang") {
      for (;;) {} // eslint-disable-line no-empty -- the page's main thread stops answering
    } else if (event.type === "reload") {
      location.reload();
    } else if (event.type === "ack") {
      const ids = event.ids.map((id) => ({ ...wid(id), fromMe: true }));
      emit("chat.msg_ack_change", { ack: event.ack, chat: wid(event.ids[0].split("_")[1] || ""), ids });
    } else if (event.type === "reaction") {
      const r = event.reaction;
      emit("chat.new_reaction", { ...r, id: wid(r.id), sender: wid(r.sender), msgId: wid(r.msgId) });
    }
  };

  let since = 0;
  const poll = async () => {
    try {
      const answer = await fetch(`/standin/poll?since=${since}`).then((r) => r.json());
      since = answer.seq;
      answer.events.forEach(apply);
    } catch (e) {
      // The stand-in is restarting: ask again.
    }
    setTimeout(poll, 100);
  };

  const needChat = (chat) => {
    if (!state.mainReady) throw new Error("not connected");
    if (!chatIds.has(chat)) throw new Error(`chat ${chat} not found`);
  };

  window.WPP = {
    isReady: false,
    version: "standin",
    supportedWhatsappWeb: ">=2.3000.1038792969-alpha",
    on: (name, fn) => (listeners[name] = [...(listeners[name] || []), fn]),
    conn: {
      isAuthenticated: () => state.authenticated,
      isMainReady: () => state.mainReady,
      getAuthCode: () => state.authCode,
      logout: () => post("/standin/logout", {}),
      genLinkDeviceCodeForPhoneNumber: (phone) =>
        post("/standin/pair", { phone }).then((a) => {
          if (a.error) throw new Error(a.error);
          return a.code;
        }),
    },
    chat: {
      list: async (options) => {
        if (!state.mainReady) throw new Error("not connected");
        const chats = await fetch("/standin/chats").then((r) => r.json());
        return chats
          .filter((c) => !(options && options.onlyWithUnreadMessage) || c.unreadCount > 0)
          .map((c) => ({ id: wid(c.id), unreadCount: c.unreadCount, hasUnread: c.unreadCount > 0, isUser: true }));
      },
      getMessages: async (chat, options) => {
        const query = `chat=${encodeURIComponent(chat)}&count=${options.count || 20}&unread=${options.onlyUnread ? 1 : 0}`;
        const found = await fetch(`/standin/messages?${query}`).then((r) => r.json());
        return found.map(asMsg);
      },
      markIsRead: (chat) => {
        needChat(chat);
        return post("/standin/seen", { chat });
      },
      markIsComposing: (chat, duration) => {
        needChat(chat);
        return post("/standin/presence", { chat, state: "composing", duration });
      },
      markIsRecording: (chat, duration) => {
        needChat(chat);
        return post("/standin/presence", { chat, state: "recording", duration });
      },
      markIsPaused: (chat) => post("/standin/presence", { chat, state: "paused" }),
      downloadMedia: async (id) => {
        const answer = await fetch(`/standin/media?id=${encodeURIComponent(String(id))}`);
        // wa-js throws a plain object when WhatsApp no longer has the file.
        if (!answer.ok) throw { error: true, code: "media_not_found", message: "Media not found" };
        return answer.blob();
      },
      sendTextMessage: async (chat, content, options) => {
        needChat(chat);
        const answer = await post("/standin/send", { chat, body: content, options });
        if (answer.error) throw new Error(answer.error);
        if (answer.hang) for (;;) {} // eslint-disable-line no-empty -- sent, then the page stops answering
        // As WhatsApp Web does: the server took it (ack 1), reported right after the send.
        queueMicrotask(() => emit("chat.msg_ack_change", { ack: 1, chat: wid(chat), ids: [{ ...wid(answer.id), fromMe: true }] }));
        return { id: answer.id, ack: 1 };
      },
      // wa-js takes a data URL (or a Blob); the stand-in hands the bytes to the server, which records them.
      sendFileMessage: async (chat, content, options) => {
        needChat(chat);
        const data = String(content).slice(String(content).indexOf(",") + 1);
        const answer = await post("/standin/send_file", { chat, data, options });
        if (answer.error) throw new Error(answer.error);
        queueMicrotask(() => emit("chat.msg_ack_change", { ack: 1, chat: wid(chat), ids: [{ ...wid(answer.id), fromMe: true }] }));
        return { id: answer.id, ack: 1 };
      },
    },
  };
  window.Debug = { VERSION: "2.3000.standin" };
  fetch("/standin/hello")
    .then((r) => r.json())
    .then((hello) => {
      since = hello.seq;
      chatIds.clear();
      hello.chats.forEach((c) => chatIds.add(c));
      if (hello.linked) {
        state.authenticated = state.mainReady = true;
      } else {
        state.authCode = { type: "qr", ref: hello.ref, fullCode: hello.qr };
      }
      if (hello.mode !== "MAIN") state.mainReady = false;
      window.WPP.isReady = true;
      emit("loader.ready");
      if (hello.mode !== "MAIN") emit("conn.stream_mode_changed", hello.mode);
      poll();
    });
})();
