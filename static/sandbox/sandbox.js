// The sandbox chat: pretend customers write through the Graph stand-in; the thread is polled from
// our database every second. Message text is only ever set with textContent (never parsed as HTML).
// The script holds no words of its own: they come from #sandbox-text, rendered in the active language.
(() => {
  "use strict";
  const app = document.querySelector(".app");
  const thread = document.querySelector("[data-testid=sandbox-thread]");
  if (!app || !thread) return;

  const sendUrl = app.dataset.sendUrl;
  const messagesUrl = app.dataset.messagesUrl;
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const text = document.getElementById("sandbox-text").dataset;
  const list = document.querySelector("[data-testid=sandbox-customers]");
  const label = document.querySelector("[data-testid=sandbox-customer-label]");
  const input = document.querySelector("[data-testid=sandbox-input]");
  const sendButton = document.querySelector("[data-testid=sandbox-send]");
  const backButton = document.querySelector("[data-testid=sandbox-back]");
  const startForm = document.querySelector("[data-testid=sandbox-start-form]");
  const errorBox = document.querySelector("[data-testid=sandbox-error]");
  const startError = document.querySelector("[data-testid=sandbox-start-error]");
  const locale = document.documentElement.lang || undefined;
  const TICKS = {
    queued: ["🕓", text.queued],
    accepted: ["✓", text.sent],
    sent: ["✓", text.sent],
    delivered: ["✓✓", text.delivered],
    read: ["✓✓", text.read],
    failed: ["!", text.failed],
  };

  const customers = JSON.parse(document.getElementById("sandbox-customers-data").textContent);
  let current = null;
  let rendered = new Map();
  let pollTimer = null;
  let polling = false;

  const digits = (value) => value.replace(/[\s+()\-.]/g, "");

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  // On a phone only one pane shows (see sandbox.css); on a wide screen both do and this is a no-op.
  function show(view) {
    app.dataset.view = view;
  }

  function renderCustomers() {
    list.replaceChildren();
    for (const customer of customers) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.testid = "sandbox-customer";
      button.dataset.number = customer.number;
      if (current && current.number === customer.number) button.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = customer.name || "+" + customer.number;
      const number = document.createElement("span");
      number.className = "num";
      number.textContent = "+" + customer.number;
      button.append(name, number);
      button.addEventListener("click", () => select(customer));
      item.append(button);
      list.append(item);
    }
  }

  function activeCustomerButton() {
    return list.querySelector("[aria-current=true]");
  }

  function select(customer, { open = true } = {}) {
    const same = current && current.number === customer.number;
    current = customer;
    label.textContent = `${customer.name || "+" + customer.number} · +${customer.number}`;
    input.disabled = false;
    sendButton.disabled = false;
    if (!same) {
      rendered = new Map();
      thread.replaceChildren();
      showError("");
      poll();
    }
    renderCustomers();
    if (open) show("chat");
    // On load with a phone's list showing, the input is hidden and focusing it would do nothing.
    if (open || input.offsetParent) input.focus();
  }

  function bubble(message) {
    const node = document.createElement("div");
    node.className = "bubble";
    node.dataset.testid = "sandbox-message";
    node.dataset.id = message.id;
    node.dataset.direction = message.direction;
    node.dataset.author = message.author;
    if (message.direction === "out" && message.author !== "bot") {
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = message.author === "agent" ? text.agent : message.author;
      node.append(author);
    }
    const body = document.createElement("span");
    body.className = "body";
    body.dataset.testid = "sandbox-message-body";
    body.textContent = message.body || `[${message.type}]`;
    const meta = document.createElement("span");
    meta.className = "meta";
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = new Date(message.created_at).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    meta.append(time);
    if (message.direction === "out") {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.dataset.testid = "tick";
      tick.setAttribute("role", "img");
      meta.append(tick);
    }
    node.append(body, meta);
    return node;
  }

  function update(node, message) {
    const tick = node.querySelector("[data-testid=tick]");
    if (tick && tick.dataset.status !== message.status) {
      const [glyph, name] = TICKS[message.status] || ["", message.status];
      tick.dataset.status = message.status;
      tick.textContent = glyph;
      tick.title = name;
      tick.setAttribute("aria-label", name);
    }
  }

  async function poll() {
    if (!current || polling) return;
    polling = true;
    const number = current.number;
    try {
      const response = await fetch(`${messagesUrl}?number=${encodeURIComponent(number)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok || !current || current.number !== number) return;
      const data = await response.json();
      const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
      let added = false;
      for (const message of data.messages) {
        let node = rendered.get(message.id);
        if (!node) {
          node = bubble(message);
          rendered.set(message.id, node);
          thread.append(node);
          added = true;
        }
        update(node, message);
      }
      if (added && (atBottom || rendered.size === data.messages.length)) thread.scrollTop = thread.scrollHeight;
    } catch (error) {
      // The next tick tries again; a restarting server is not worth a banner.
    } finally {
      polling = false;
    }
  }

  startForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = form.elements.name.value.trim();
    const number = digits(form.elements.number.value);
    const invalid = !/^\d{6,15}$/.test(number);
    // Said beside the field, not in the chat pane, which a phone may not be showing.
    startError.textContent = invalid ? text.badNumber : "";
    startError.hidden = !invalid;
    if (invalid) form.elements.number.setAttribute("aria-invalid", "true");
    else form.elements.number.removeAttribute("aria-invalid");
    if (invalid) {
      form.elements.number.focus();
      return;
    }
    let customer = customers.find((c) => c.number === number);
    if (!customer) {
      customer = { name, number };
      customers.unshift(customer);
    } else if (name) {
      customer.name = name;
    }
    form.reset();
    select(customer);
  });

  backButton.addEventListener("click", () => {
    show("list");
    // Keep the keyboard where the user left off: on the customer they were talking to.
    (activeCustomerButton() || startForm.elements.name).focus();
  });

  document.querySelector("[data-testid=sandbox-composer]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!current || !message) return;
    sendButton.disabled = true;
    try {
      const response = await fetch(sendUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ number: current.number, name: current.name, text: message }),
      });
      if (response.ok) {
        input.value = "";
        showError("");
        poll();
      } else {
        const data = await response.json().catch(() => ({}));
        showError((data.error && data.error.message) || text.httpError.replace("{status}", response.status));
      }
    } catch (error) {
      showError(text.unreachable);
    } finally {
      sendButton.disabled = false;
      input.focus();
    }
  });

  renderCustomers();
  if (customers.length) select(customers[0], { open: false });
  pollTimer = setInterval(poll, 1000);
  window.addEventListener("beforeunload", () => clearInterval(pollTimer));
})();
