// The sandbox chat: pretend customers write through the Graph stand-in; the thread is polled from
// our database every second. Message text is only ever set with textContent (never parsed as HTML).
(() => {
  "use strict";
  const app = document.querySelector(".app");
  const thread = document.querySelector("[data-testid=sandbox-thread]");
  if (!app || !thread) return;

  const sendUrl = app.dataset.sendUrl;
  const messagesUrl = app.dataset.messagesUrl;
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const list = document.querySelector("[data-testid=sandbox-customers]");
  const label = document.querySelector("[data-testid=sandbox-customer-label]");
  const input = document.querySelector("[data-testid=sandbox-input]");
  const sendButton = document.querySelector("[data-testid=sandbox-send]");
  const errorBox = document.querySelector("[data-testid=sandbox-error]");
  const TICKS = { queued: "🕓", accepted: "✓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

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

  function renderCustomers() {
    list.replaceChildren();
    for (const customer of customers) {
      const item = document.createElement("li");
      item.dataset.testid = "sandbox-customer";
      item.dataset.number = customer.number;
      item.className = current && current.number === customer.number ? "active" : "";
      const name = document.createElement("span");
      name.textContent = customer.name || customer.number;
      const number = document.createElement("span");
      number.className = "num";
      number.textContent = "+" + customer.number;
      item.append(name, number);
      item.addEventListener("click", () => select(customer));
      list.append(item);
    }
  }

  function select(customer) {
    current = customer;
    rendered = new Map();
    thread.replaceChildren();
    label.textContent = `${customer.name || "+" + customer.number} · +${customer.number}`;
    input.disabled = false;
    sendButton.disabled = false;
    input.focus();
    showError("");
    renderCustomers();
    poll();
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
      author.textContent = message.author === "agent" ? "Agent" : message.author;
      node.append(author);
    }
    const body = document.createElement("span");
    body.className = "body";
    body.dataset.testid = "sandbox-message-body";
    body.textContent = message.body || `[${message.type}]`;
    const meta = document.createElement("span");
    meta.className = "meta";
    const time = document.createElement("time");
    time.textContent = new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(time);
    if (message.direction === "out") {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.dataset.testid = "tick";
      meta.append(tick);
    }
    node.append(body, meta);
    return node;
  }

  function update(node, message) {
    const tick = node.querySelector("[data-testid=tick]");
    if (tick && tick.dataset.status !== message.status) {
      tick.dataset.status = message.status;
      tick.textContent = TICKS[message.status] || "";
      tick.title = message.status;
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

  document.querySelector("[data-testid=sandbox-start-form]").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = form.elements.name.value.trim();
    const number = digits(form.elements.number.value);
    if (!/^\d{6,15}$/.test(number)) {
      showError("A phone number of 6 to 15 digits is needed.");
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

  document.querySelector("[data-testid=sandbox-composer]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!current || !text) return;
    sendButton.disabled = true;
    try {
      const response = await fetch(sendUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ number: current.number, name: current.name, text }),
      });
      if (response.ok) {
        input.value = "";
        showError("");
        poll();
      } else {
        const data = await response.json().catch(() => ({}));
        showError((data.error && data.error.message) || `Error ${response.status}`);
      }
    } catch (error) {
      showError("The server is not reachable.");
    } finally {
      sendButton.disabled = false;
      input.focus();
    }
  });

  renderCustomers();
  if (customers.length) select(customers[0]);
  pollTimer = setInterval(poll, 1000);
  window.addEventListener("beforeunload", () => clearInterval(pollTimer));
})();
