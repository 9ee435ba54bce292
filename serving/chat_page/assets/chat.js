// The shopping-chat page (served at GET /chat). Plain JavaScript, no libraries, no build step.
//
// One turn: POST /v1/chat with {session_id, message, user_id?, session_token?}; the answer is a
// stream of server-sent events, read with fetch() and a stream reader (EventSource cannot POST):
//   step    {path, why, tool, input, understood, relaxed, observation, tool_ms}; on the agent
//           path {step, thought, tool, ok, llm_ms, tool_ms, ...}
//   delta   {text} or {reset: true}: the reply's opening sentence as it is written
//   message {text, items: [{item_id, title, price, category, brand?}], degraded, notes}
//   done    {seconds, path, shown, degraded}
//   error   {message, degraded} (a server without a language model, older protocol)
// A `message` or `done` carrying `session_token` makes this page send it back with later turns.
//
// Server text only ever reaches the page through textContent: never innerHTML.
(() => {
  "use strict";

  const CHAT_URL = "v1/chat"; // relative to /chat, so a root-path prefix is kept
  const KEYS = {
    session: "recsys.chat.session_id",
    token: "recsys.chat.session_token",
    user: "recsys.chat.user_id",
  };

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("composer");
  const input = $("message");
  const sendButton = $("send");
  const compareButton = $("compare");
  const compareHint = $("compare-hint");
  const userInput = $("user-id");

  // ---- storage (sessionStorage may be unavailable: the page then keeps values in memory) ----
  const memory = {};
  const store = {
    get(key) {
      try {
        return window.sessionStorage.getItem(key);
      } catch (_) {
        return memory[key] ?? null;
      }
    },
    set(key, value) {
      memory[key] = value;
      try {
        window.sessionStorage.setItem(key, value);
      } catch (_) { /* memory only */ }
    },
    remove(key) {
      delete memory[key];
      try {
        window.sessionStorage.removeItem(key);
      } catch (_) { /* memory only */ }
    },
  };

  function randomSessionId() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context)
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  let sessionId = store.get(KEYS.session);
  if (!sessionId || !/^[A-Za-z0-9_.:-]{1,128}$/.test(sessionId)) {
    sessionId = randomSessionId();
    store.set(KEYS.session, sessionId);
    store.remove(KEYS.token); // a token belongs to the session it came with
  }
  let sessionToken = store.get(KEYS.token); // set once a turn returns one
  let lastList = null; // {cards: [card element], list: ol element}: what "item 1" means
  let busy = false;

  const params = new URLSearchParams(window.location.search);
  userInput.value = params.get("user_id") || store.get(KEYS.user) || "";
  userInput.addEventListener("change", () => store.set(KEYS.user, userInput.value.trim()));
  $("session-id").textContent = sessionId;

  // ---- small DOM helpers: text only ----
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatPrice(price) {
    const value = Number(price);
    return Number.isFinite(value) ? value.toFixed(2) : "";
  }

  function formatSeconds(seconds) {
    const value = Number(seconds);
    if (!Number.isFinite(value)) return "";
    return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
  }

  function formatMs(ms) {
    const value = Number(ms);
    return Number.isFinite(value) ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ms` : "";
  }

  function scrollDown() {
    window.scrollTo(0, document.body.scrollHeight);
  }

  // ---- server-sent events: `event:` and `data:` lines, an event ends at a blank line ----
  function sseParser(onEvent) {
    let buffer = "";
    let name = "";
    let data = [];

    function line(text) {
      if (text === "") {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = "";
        data = [];
        return;
      }
      if (text.startsWith(":")) return; // a comment (keep-alive)
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }

    return {
      push(chunk) {
        buffer += chunk;
        const breaks = /\r\n|\r|\n/g;
        let start = 0;
        let match;
        while ((match = breaks.exec(buffer)) !== null) {
          // a "\r" that ends the chunk may be the first half of "\r\n": wait for more
          if (match[0] === "\r" && match.index === buffer.length - 1) break;
          line(buffer.slice(start, match.index));
          start = breaks.lastIndex;
        }
        buffer = buffer.slice(start);
      },
      end() {
        if (buffer) line(buffer);
        buffer = "";
        line("");
      },
    };
  }

  // ---- one turn on the page ----
  function addUserTurn(text) {
    const turn = el("article", "turn user");
    turn.append(el("p", "text", text));
    log.append(turn);
  }

  class AssistantTurn {
    constructor() {
      this.node = el("article", "turn assistant");
      this.node.dataset.status = "streaming";
      this.steps = el("ol", "steps");
      this.text = el("p", "text pending", "…");
      this.cards = null;
      this.meta = el("p", "meta muted");
      this.node.append(this.steps, this.text, this.meta);
      log.append(this.node);
      this.finished = false;
      this.path = "";
    }

    step(data) {
      const parts = [];
      if (data.path) {
        this.path = String(data.path);
        parts.push(this.path);
      }
      if (data.tool) parts.push(String(data.tool));
      const why = data.why || data.thought;
      if (why) parts.push(String(why));
      if (data.ok === false) parts.push("failed");
      const timing = [formatMs(data.llm_ms) && `llm ${formatMs(data.llm_ms)}`,
        formatMs(data.tool_ms) && `tool ${formatMs(data.tool_ms)}`].filter(Boolean).join(", ");
      if (timing) parts.push(timing);
      if (Array.isArray(data.relaxed) && data.relaxed.length) {
        parts.push(`relaxed: ${data.relaxed.join(", ")}`);
      }
      const item = el("li", "step", parts.join(" · "));
      if (data.input && typeof data.input === "object" && Object.keys(data.input).length) {
        item.title = JSON.stringify(data.input); // the tool's input, on hover
      }
      this.steps.append(item);
      scrollDown();
    }

    delta(data) {
      // the opening sentence as it is written; `message` replaces it with the whole reply
      if (this.text.classList.contains("pending") || data.reset === true) {
        this.text.classList.remove("pending");
        this.text.textContent = "";
      }
      if (typeof data.text === "string") this.text.textContent += data.text;
      scrollDown();
    }

    message(data) {
      this.text.classList.remove("pending");
      this.text.textContent = typeof data.text === "string" ? data.text : "";
      const items = Array.isArray(data.items) ? data.items : [];
      if (items.length) this.showCards(items);
      const notes = Array.isArray(data.notes) ? data.notes.filter((n) => n) : [];
      if (notes.length) {
        const details = el("details", "notes muted");
        details.append(el("summary", "", notes.length === 1 ? "note" : `${notes.length} notes`));
        for (const note of notes) details.append(el("p", "", note));
        this.node.insertBefore(details, this.meta);
      }
      this.degraded(data.degraded);
      scrollDown();
    }

    showCards(items) {
      if (lastList) retire(lastList);
      const list = el("ol", "cards");
      const cards = [];
      items.forEach((item, i) => {
        const card = el("li", "card");
        card.dataset.itemId = String(item.item_id ?? "");
        card.dataset.position = String(i + 1);
        const pick = el("label", "pick");
        const box = el("input");
        box.type = "checkbox";
        box.className = "select";
        box.setAttribute("aria-label", `Select item ${i + 1}`);
        box.addEventListener("change", updateCompare);
        pick.append(box, el("span", "position", `${i + 1}`));
        card.append(pick);
        card.append(el("h3", "title", item.title || item.item_id || ""));
        const price = formatPrice(item.price);
        if (price) card.append(el("p", "price", price));
        if (item.category) card.append(el("p", "category", item.category));
        if (item.brand) card.append(el("p", "brand", item.brand));
        if (item.in_stock === false) card.append(el("p", "stock muted", "out of stock"));
        card.append(el("p", "item-id muted", item.item_id ?? ""));
        list.append(card);
        cards.push(card);
      });
      this.node.insertBefore(list, this.meta);
      this.cards = list;
      lastList = { list, cards };
      updateCompare();
    }

    degraded(values) {
      if (!Array.isArray(values) || !values.length) return;
      this.node.dataset.degraded = values.join(" ");
    }

    done(data) {
      this.finished = true;
      const path = data.path || this.path;
      const parts = [];
      if (path) parts.push(`path ${path}`);
      const took = formatSeconds(data.seconds);
      if (took) parts.push(took);
      if (Number.isInteger(data.steps)) parts.push(`${data.steps} step${data.steps === 1 ? "" : "s"}`);
      this.meta.textContent = parts.join(" · ");
      const degraded = Array.isArray(data.degraded) ? data.degraded : [];
      if (degraded.length) {
        this.meta.append(" · ", el("span", "degraded", `degraded: ${degraded.join(", ")}`));
      }
      this.degraded(degraded);
      if (this.text.classList.contains("pending")) {
        this.text.classList.remove("pending");
        this.text.textContent = "(no answer)";
      }
      this.node.dataset.status = "done";
    }

    fail(why, action) {
      this.finished = true;
      this.text.classList.remove("pending");
      this.text.classList.add("error");
      this.text.textContent = why;
      if (action) this.node.insertBefore(action, this.meta);
      this.node.dataset.status = "error";
      scrollDown();
    }
  }

  function retire(previous) {
    // positions refer to the list shown last: older lists can no longer be compared
    previous.list.classList.add("stale");
    for (const card of previous.cards) {
      const box = card.querySelector("input.select");
      box.checked = false;
      box.disabled = true;
    }
  }

  function selectedPositions() {
    if (!lastList) return [];
    return lastList.cards
      .filter((card) => card.querySelector("input.select").checked)
      .map((card) => Number(card.dataset.position));
  }

  function updateCompare() {
    const n = selectedPositions().length;
    compareButton.disabled = busy || n < 2;
    compareHint.textContent = n >= 2 ? `${n} selected` : "Tick two or more products of the last list.";
  }

  function compareMessage(positions) {
    // the server's parser reads "items 1 and 3" / "items 1, 2 and 4"
    const head = positions.slice(0, -1).join(", ");
    return `compare items ${head} and ${positions[positions.length - 1]}`;
  }

  function keepToken(data) {
    if (data && typeof data.session_token === "string" && data.session_token) {
      sessionToken = data.session_token;
      store.set(KEYS.token, sessionToken);
    }
  }

  function handle(turn, name, raw) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch (_) {
      return; // not JSON: not an event this page knows
    }
    if (!data || typeof data !== "object") return;
    if (name === "step") turn.step(data);
    else if (name === "delta") turn.delta(data);
    else if (name === "message") {
      keepToken(data);
      turn.message(data);
    } else if (name === "done") {
      keepToken(data);
      turn.done(data);
    } else if (name === "error") {
      turn.text.classList.remove("pending");
      turn.text.textContent = String(data.message || "The assistant is unavailable.");
      turn.degraded(data.degraded);
    }
  }

  async function errorOf(response) {
    let message = `${response.status} ${response.statusText}`.trim();
    let param = null;
    try {
      const body = await response.json();
      if (body && body.error) {
        message = String(body.error.message || message);
        param = body.error.param ?? null;
      }
    } catch (_) { /* not the JSON error shape */ }
    return { message, param };
  }

  function restartButton() {
    const button = el("button", "quiet", "Start a new conversation");
    button.type = "button";
    button.addEventListener("click", newConversation);
    return button;
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    form.setAttribute("aria-busy", value ? "true" : "false");
    updateCompare();
  }

  async function send(message) {
    const text = message.trim();
    if (!text || busy) return;
    setBusy(true);
    $("hint")?.remove();
    addUserTurn(text);
    const turn = new AssistantTurn();
    scrollDown();
    const body = { session_id: sessionId, message: text };
    const userId = userInput.value.trim();
    if (userId) body.user_id = userId;
    if (sessionToken) body.session_token = sessionToken;
    try {
      const response = await fetch(CHAT_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const error = await errorOf(response);
        const foreign = response.status === 403 || error.param === "session_token";
        turn.fail(error.message, foreign ? restartButton() : null);
        return;
      }
      const parser = sseParser((name, data) => handle(turn, name, data));
      if (response.body && response.body.getReader) {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
        }
        parser.push(decoder.decode());
      } else {
        parser.push(await response.text()); // no streams: the whole answer at once
      }
      parser.end();
      if (!turn.finished) turn.fail("The answer was cut short (the stream ended without done).");
    } catch (err) {
      turn.fail(`Could not reach the server: ${err && err.message ? err.message : err}`);
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  function newConversation() {
    sessionId = randomSessionId();
    store.set(KEYS.session, sessionId);
    sessionToken = null;
    store.remove(KEYS.token);
    lastList = null;
    log.replaceChildren();
    $("session-id").textContent = sessionId;
    updateCompare();
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || busy) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  compareButton.addEventListener("click", () => {
    const positions = selectedPositions();
    if (positions.length < 2 || busy) return;
    send(compareMessage(positions));
  });
  $("new-session").addEventListener("click", newConversation);
  updateCompare();
  input.focus();
})();
